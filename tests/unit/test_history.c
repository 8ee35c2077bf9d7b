/* Unit tests for the history (controller/history.c) on real SQLite files in
 * a mkdtemp directory: creating the file and its parents, begin -> finish,
 * an incomplete diagnosis kept when finish never comes (and across a
 * reopen), list order and limit, load by id back into the same report,
 * duplicate and unknown ids, and clear errors naming the file for a file
 * that is not SQLite, a layout from a newer mtrctl, a stored report that
 * no longer reads, and a parent that is not a directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "history.h"
#include "report_json.h"

#define FIXTURE(name) MD_TEST_DATA "/report/" name

static char base[64];

/* --- Helpers ------------------------------------------------------------------ */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

/* A fresh temporary directory per test. */
static int setup(void **state) {
  (void)state;
  snprintf(base, sizeof base, "/tmp/md-test-history-XXXXXX");
  return mkdtemp(base) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  return nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* base/name in buf. */
static const char *in_base(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/%s", base, name);
  return buf;
}

static md_report *load(const char *path) {
  char err[512];
  md_report *r = md_report_load_json_file(path, err, sizeof err);
  if (!r) {
    fail_msg("%s", err);
    abort(); /* not reached; tells the compiler r is not NULL below */
  }
  return r;
}

/* The fixture with another id and start time (seconds after it). */
static md_report *report_at(const char *id, int64_t plus_s) {
  md_report *r = load(FIXTURE("asymmetric.json"));
  snprintf(r->id, sizeof r->id, "%s", id);
  r->started_at_ns += plus_s * 1000000000LL;
  return r;
}

static md_history *open_ok(const char *path) {
  md_history *h = NULL;
  char err[512];
  int rc = md_history_open(path, &h, err, sizeof err);
  if (rc)
    fail_msg("open: %s", err);
  return h;
}

/* --- Tests ---------------------------------------------------------------------- */

static void test_create_with_parents(void **state) {
  (void)state;
  char path[256], dir[256];
  in_base(path, sizeof path, "a/b/c/history.db");
  md_history *h = open_ok(path);
  assert_string_equal(md_history_path(h), path);
  md_history_close(h);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(stat(in_base(dir, sizeof dir, "a/b/c"), &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0700);
  /* the layout: a version table and the reports table */
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *s;
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &s, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(s, 0), MD_HISTORY_VERSION);
  assert_int_equal(sqlite3_step(s), SQLITE_DONE); /* one row, also after reopening */
  sqlite3_finalize(s);
  sqlite3_close(db);
  h = open_ok(path);
  md_history_close(h);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM schema_version", -1, &s, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(s, 0), 1);
  sqlite3_finalize(s);
  sqlite3_close(db);
  md_history_close(NULL);
}

static void test_begin_finish_load(void **state) {
  (void)state;
  char path[256], err[512];
  md_history *h = open_ok(in_base(path, sizeof path, "history.db"));
  md_report *r = report_at("20261129T021000Z-aaaaaa", 0);
  assert_int_equal(md_history_begin(h, r, err, sizeof err), 0);

  md_history_entry *e;
  int n;
  assert_int_equal(md_history_list(h, 10, &e, &n, err, sizeof err), 0);
  assert_int_equal(n, 1);
  assert_string_equal(e[0].id, "20261129T021000Z-aaaaaa");
  assert_false(e[0].complete);
  assert_int_equal(e[0].status, MD_STATUS_INCOMPLETE); /* whatever the report said */
  assert_string_equal(e[0].a, "local");
  assert_string_equal(e[0].b, "cvm");
  assert_true(e[0].started_at_ns == r->started_at_ns);
  md_history_list_free(e, n);
  md_report *got = NULL;
  assert_int_equal(md_history_load(h, r->id, &got, err, sizeof err), 0);
  assert_int_equal(got->diagnosis.status, MD_STATUS_INCOMPLETE);
  md_report_free(got);

  /* a second begin of the same id is refused */
  assert_int_equal(md_history_begin(h, r, err, sizeof err), -EEXIST);
  assert_non_null(strstr(err, "already stored"));
  assert_non_null(strstr(err, path));

  assert_int_equal(md_history_finish(h, r, err, sizeof err), 0);
  assert_int_equal(md_history_list(h, 0, &e, &n, err, sizeof err), 0);
  assert_int_equal(n, 1); /* replaced, not added */
  assert_true(e[0].complete);
  assert_int_equal(e[0].status, MD_STATUS_DEGRADED);
  assert_int_equal(e[0].direction, MD_DIRECTION_REVERSE);
  assert_non_null(strstr(e[0].summary, "Packets from cvm to local are lost"));
  md_history_list_free(e, n);

  /* load gives the same report */
  assert_int_equal(md_history_load(h, r->id, &got, err, sizeof err), 0);
  char *a = md_report_to_json_string(r, 1), *b = md_report_to_json_string(got, 1);
  assert_string_equal(a, b);
  free(a);
  free(b);
  md_report_free(got);

  /* finish without begin stores it too */
  md_report *r2 = report_at("20261129T021500Z-bbbbbb", 300);
  assert_int_equal(md_history_finish(h, r2, err, sizeof err), 0);
  assert_int_equal(md_history_list(h, 0, &e, &n, err, sizeof err), 0);
  assert_int_equal(n, 2);
  assert_string_equal(e[0].id, "20261129T021500Z-bbbbbb");
  md_history_list_free(e, n);

  /* unknown and empty ids */
  got = (md_report *)1;
  assert_int_equal(md_history_load(h, "20200101T000000Z-000000", &got, err, sizeof err), -ENOENT);
  assert_null(got);
  assert_non_null(strstr(err, "no report with id 20200101T000000Z-000000"));
  assert_non_null(strstr(err, path));
  assert_int_equal(md_history_load(h, "", &got, err, sizeof err), -EINVAL);
  /* a report without an id cannot be stored */
  md_report *noid = md_report_new();
  assert_int_equal(md_history_begin(h, noid, err, sizeof err), -EINVAL);
  md_report_free(noid);

  md_report_free(r);
  md_report_free(r2);
  md_history_close(h);
}

static void test_incomplete_kept_and_reopen(void **state) {
  (void)state;
  char path[256], err[512];
  in_base(path, sizeof path, "history.db");
  md_history *h = open_ok(path);
  md_report *killed = report_at("20261129T030000Z-dead00", 10);
  md_report *done = report_at("20261129T030100Z-d0e000", 70);
  assert_int_equal(md_history_begin(h, killed, err, sizeof err), 0);
  assert_int_equal(md_history_begin(h, done, err, sizeof err), 0);
  assert_int_equal(md_history_finish(h, done, err, sizeof err), 0);
  md_history_close(h); /* the run of "killed" never finishes */

  h = open_ok(path); /* an existing file */
  md_history_entry *e;
  int n;
  assert_int_equal(md_history_list(h, 0, &e, &n, err, sizeof err), 0);
  assert_int_equal(n, 2);
  assert_string_equal(e[0].id, "20261129T030100Z-d0e000");
  assert_true(e[0].complete);
  assert_string_equal(e[1].id, "20261129T030000Z-dead00");
  assert_false(e[1].complete);
  assert_int_equal(e[1].status, MD_STATUS_INCOMPLETE);
  md_history_list_free(e, n);
  md_report *got = NULL;
  assert_int_equal(md_history_load(h, "20261129T030000Z-dead00", &got, err, sizeof err), 0);
  assert_int_equal(got->diagnosis.status, MD_STATUS_INCOMPLETE);
  assert_non_null(got->forward); /* what was known when it was stored */
  md_report_free(got);
  md_history_close(h);
  md_report_free(killed);
  md_report_free(done);
}

static void test_list_order_and_limit(void **state) {
  (void)state;
  char path[256], err[512];
  md_history *h = open_ok(in_base(path, sizeof path, "history.db"));
  /* stored out of order; two with the same start time (then by id) */
  static const struct {
    const char *id;
    int plus;
  } runs[] = {{"r3", 300}, {"r1", 100}, {"r5", 500}, {"r2", 200}, {"r4a", 400}, {"r4b", 400}};
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    md_report *r = report_at(runs[i].id, runs[i].plus);
    assert_int_equal(md_history_finish(h, r, err, sizeof err), 0);
    md_report_free(r);
  }
  md_history_entry *e;
  int n;
  assert_int_equal(md_history_list(h, 0, &e, &n, err, sizeof err), 0);
  static const char *want[] = {"r5", "r4b", "r4a", "r3", "r2", "r1"};
  assert_int_equal(n, 6);
  for (int i = 0; i < n; i++) {
    assert_string_equal(e[i].id, want[i]);
    if (i)
      assert_true(e[i - 1].started_at_ns >= e[i].started_at_ns);
  }
  md_history_list_free(e, n);
  assert_int_equal(md_history_list(h, 2, &e, &n, err, sizeof err), 0);
  assert_int_equal(n, 2);
  assert_string_equal(e[0].id, "r5");
  assert_string_equal(e[1].id, "r4b");
  md_history_list_free(e, n);
  assert_int_equal(md_history_list(h, -1, &e, &n, err, sizeof err), 0);
  assert_int_equal(n, 6);
  md_history_list_free(e, n);
  md_history_close(h);

  /* an empty history lists nothing */
  h = open_ok(in_base(path, sizeof path, "empty.db"));
  assert_int_equal(md_history_list(h, 5, &e, &n, err, sizeof err), 0);
  assert_int_equal(n, 0);
  md_history_list_free(e, n);
  md_history_close(h);
}

static void test_not_sqlite(void **state) {
  (void)state;
  char path[256], err[512];
  in_base(path, sizeof path, "notes.txt");
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  static const char line[] = "this is not a database, it is a text file somebody named it so\n";
  for (int i = 0; i < 100; i++)
    fputs(line, f);
  fclose(f);
  md_history *h = (md_history *)1;
  int rc = md_history_open(path, &h, err, sizeof err);
  assert_int_equal(rc, -EBADMSG);
  assert_null(h);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "not an SQLite database"));
  /* and the file is left alone */
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_size, 100 * (sizeof line - 1));

  /* a directory where the file should be */
  in_base(path, sizeof path, "adir");
  assert_int_equal(mkdir(path, 0700), 0);
  rc = md_history_open(path, &h, err, sizeof err);
  assert_true(rc < 0);
  assert_non_null(strstr(err, path));

  /* a parent that is a file */
  char p2[300];
  snprintf(p2, sizeof p2, "%s/notes.txt/history.db", base);
  rc = md_history_open(p2, &h, err, sizeof err);
  assert_int_equal(rc, -ENOTDIR);
  assert_non_null(strstr(err, p2));
  assert_non_null(strstr(err, "is not a directory"));

  assert_int_equal(md_history_open("", &h, err, sizeof err), -EINVAL);
  assert_int_equal(md_history_open(NULL, &h, NULL, 0), -EINVAL);
}

static void test_newer_layout_and_bad_rows(void **state) {
  (void)state;
  char path[256], err[512];
  in_base(path, sizeof path, "history.db");
  md_history *h = open_ok(path);
  md_report *r = report_at("20261129T040000Z-bad000", 0);
  assert_int_equal(md_history_finish(h, r, err, sizeof err), 0);
  md_history_close(h);
  md_report_free(r);

  /* a row whose JSON no longer reads, another that is not JSON */
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(
      sqlite3_exec(db,
                   "INSERT INTO reports SELECT 'broken', started_at_ns, started_at,"
                   " a, b, status, direction, summary, complete,"
                   " replace(json, '\"schema\":\"mtrdiag.report.v1\"', '\"schema\":1'),"
                   " updated_at_ns FROM reports;"
                   "INSERT INTO reports SELECT 'junk', 1, '', 'a', 'b', 'bogus',"
                   " 'sideways', NULL, 1, '{not json', 0;",
                   NULL, NULL, NULL),
      SQLITE_OK);
  sqlite3_close(db);
  h = open_ok(path);
  md_report *got = NULL;
  assert_int_equal(md_history_load(h, "broken", &got, err, sizeof err), -EBADMSG);
  assert_null(got);
  assert_non_null(strstr(err, "report broken does not read back: schema: expected"));
  assert_int_equal(md_history_load(h, "junk", &got, err, sizeof err), -EBADMSG);
  assert_non_null(strstr(err, "line 1"));
  md_history_entry *e;
  int n;
  assert_int_equal(md_history_list(h, 0, &e, &n, err, sizeof err), 0);
  assert_int_equal(n, 3);
  assert_string_equal(e[2].id, "junk"); /* unknown names read as incomplete / none */
  assert_int_equal(e[2].status, MD_STATUS_INCOMPLETE);
  assert_int_equal(e[2].direction, MD_DIRECTION_NONE);
  assert_null(e[2].summary);
  md_history_list_free(e, n);
  md_history_close(h);

  /* a layout from a newer mtrctl is refused, not changed */
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  h = (md_history *)1;
  int rc = md_history_open(path, &h, err, sizeof err);
  assert_int_equal(rc, -EPROTO);
  assert_null(h);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "newer mtrctl"));
}

static void test_busy(void **state) {
  (void)state;
  char path[256], err[512];
  in_base(path, sizeof path, "history.db");
  md_history *h = open_ok(path);
  /* another process holds the write lock: begin waits, then says so. The
   * wait is the busy timeout (5 s); this test takes that long. */
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
  md_report *r = report_at("busy", 0);
  int rc = md_history_begin(h, r, err, sizeof err);
  assert_int_equal(rc, -EBUSY);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "locked"));
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(db);
  assert_int_equal(md_history_begin(h, r, err, sizeof err), 0);
  md_report_free(r);
  md_history_close(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_with_parents, setup, teardown),
      cmocka_unit_test_setup_teardown(test_begin_finish_load, setup, teardown),
      cmocka_unit_test_setup_teardown(test_incomplete_kept_and_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list_order_and_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_sqlite, setup, teardown),
      cmocka_unit_test_setup_teardown(test_newer_layout_and_bad_rows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
