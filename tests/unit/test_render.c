/* Unit tests for the renderers (controller/render_*.c) and the evidence
 * bundle (controller/bundle.c), on the hand-written report fixtures in
 * tests/data/report: the side-by-side alignment lines, text (mtr layouts,
 * verdicts, diagnosis, no control characters reach the terminal),
 * markdown (both paths, verdict, advice, escaping, fences), HTML (both
 * paths, the SVG and its parts, escaping of a "<script>" hostname, no
 * external resource), and the bundle's files, modes and errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "render.h"
#include "report_json.h"

#define FIXTURE(name) MD_TEST_DATA "/report/" name

/* --- Helpers ------------------------------------------------------------------ */

static md_report *load(const char *path) {
  char err[512];
  md_report *r = md_report_load_json_file(path, err, sizeof err);
  if (!r) {
    fail_msg("%s", err);
    abort(); /* not reached; tells the compiler r is not NULL below */
  }
  return r;
}

/* What a renderer wrote (caller frees). Not inlined: GCC -O3 would then
 * take the memstream's buffer for a dangling pointer (-Wdangling-pointer). */
static __attribute__((noinline)) char *render(const md_report *r, md_format f) {
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  assert_non_null(mem);
  assert_int_equal(md_render(r, f, mem), 0);
  fclose(mem);
  return buf;
}

/* needle must be in hay. */
static void has(const char *hay, const char *needle) {
  if (!strstr(hay, needle))
    fail_msg("missing \"%s\" in:\n%s", needle, hay);
}

/* needle must not be in hay. */
static void hasnt(const char *hay, const char *needle) {
  const char *p = strstr(hay, needle);
  if (p)
    fail_msg("unexpected \"%s\" near: %.80s", needle, p > hay + 40 ? p - 40 : hay);
}

/* Occurrences of needle in hay. */
static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

/* Set the first responder's hostname at a TTL of a path. */
static void set_name(md_path *p, int ttl, const char *name) {
  md_hop *h = md_path_hop(p, ttl);
  assert_non_null(h);
  assert_true(h->n_hosts > 0);
  assert_int_equal(md_host_set_hostname(&h->hosts[0], name), 0);
}

/* --- Formats and rows --------------------------------------------------------- */

static void test_format_names(void **state) {
  (void)state;
  md_format f;
  assert_int_equal(md_format_parse("text", &f), 0);
  assert_int_equal(f, MD_FORMAT_TEXT);
  assert_int_equal(md_format_parse("JSON", &f), 0);
  assert_int_equal(f, MD_FORMAT_JSON);
  assert_int_equal(md_format_parse("markdown", &f), 0);
  assert_int_equal(f, MD_FORMAT_MARKDOWN);
  assert_int_equal(md_format_parse("md", &f), 0);
  assert_int_equal(f, MD_FORMAT_MARKDOWN);
  assert_int_equal(md_format_parse("html", &f), 0);
  assert_int_equal(f, MD_FORMAT_HTML);
  assert_int_equal(md_format_parse("pdf", &f), -EINVAL);
  assert_int_equal(md_format_parse(NULL, &f), -EINVAL);
  assert_string_equal(md_format_name(MD_FORMAT_MARKDOWN), "markdown");
}

static void test_align_rows(void **state) {
  (void)state;
  md_report *r = load(FIXTURE("asymmetric.json"));
  md_align_row *rows;
  int n;
  /* forward 1..4, reverse 4..1; pairs (1,3) and (3,1); 2 only on each */
  assert_int_equal(md_align_rows(r, false, &rows, &n), 0);
  static const int want[][2] = {{-1, 4}, {1, 3}, {2, -1}, {-1, 2}, {3, 1}, {4, -1}};
  assert_int_equal(n, 6);
  for (int i = 0; i < n; i++) {
    assert_int_equal(rows[i].fwd_ttl, want[i][0]);
    assert_int_equal(rows[i].rev_ttl, want[i][1]);
  }
  assert_string_equal(rows[1].how, "link_mate");
  assert_string_equal(rows[2].how, "forward only");
  assert_string_equal(rows[3].how, "reverse only");
  assert_string_equal(rows[4].how, "same_ip");
  free(rows);
  /* with the endpoints: A faces the reverse path's last hop, B the forward's */
  assert_int_equal(md_align_rows(r, true, &rows, &n), 0);
  static const int want2[][2] = {{0, 4}, {1, 3}, {2, -1}, {-1, 2}, {3, 1}, {4, 0}};
  assert_int_equal(n, 6);
  for (int i = 0; i < n; i++) {
    assert_int_equal(rows[i].fwd_ttl, want2[i][0]);
    assert_int_equal(rows[i].rev_ttl, want2[i][1]);
  }
  assert_string_equal(rows[0].how, "endpoint");
  assert_string_equal(rows[5].how, "endpoint");
  free(rows);
  /* pairs naming hops that do not exist are ignored, every hop still shows */
  r->alignment.shared[0].reverse_ttl = 99;
  r->alignment.shared[1].forward_ttl = 77;
  assert_int_equal(md_align_rows(r, false, &rows, &n), 0);
  assert_int_equal(n, 8);
  int f = 0, v = 0;
  for (int i = 0; i < n; i++) {
    f += rows[i].fwd_ttl > 0;
    v += rows[i].rev_ttl > 0;
  }
  assert_int_equal(f, 4);
  assert_int_equal(v, 4);
  free(rows);
  md_report_free(r);

  /* forward only: one column, and B is not drawn as a reverse source */
  r = load(FIXTURE("forward_only.json"));
  assert_int_equal(md_align_rows(r, true, &rows, &n), 0);
  assert_int_equal(n, 5);
  assert_int_equal(rows[0].fwd_ttl, 0);
  assert_int_equal(rows[0].rev_ttl, -1);
  assert_int_equal(rows[4].fwd_ttl, 4);
  assert_int_equal(rows[4].rev_ttl, -1);
  free(rows);
  md_report_free(r);

  /* nothing measured */
  r = md_report_new();
  assert_int_equal(md_align_rows(r, false, &rows, &n), 0);
  assert_int_equal(n, 0);
  free(rows);
  md_report_free(r);
}

static void test_hop_name(void **state) {
  (void)state;
  md_report *r = load(FIXTURE("errors.json"));
  char buf[64];
  assert_string_equal(md_hop_name(r->forward, 1, false, buf, sizeof buf), "r1.lab.test");
  assert_string_equal(md_hop_name(r->forward, 1, true, buf, sizeof buf), "198.18.1.2");
  assert_string_equal(md_hop_name(r->forward, 3, false, buf, sizeof buf), "???");
  assert_string_equal(md_hop_name(r->forward, 40, false, buf, sizeof buf), "???");
  assert_string_equal(md_hop_name(NULL, 1, false, buf, sizeof buf), "???");
  assert_string_equal(md_report_agent_label(&r->a, "A"), "local");
  md_report_agent nobody = {0};
  assert_string_equal(md_report_agent_label(&nobody, "B"), "B");
  md_report_free(r);
}

/* --- Text ----------------------------------------------------------------------- */

static void test_text(void **state) {
  (void)state;
  md_report *r = load(FIXTURE("asymmetric.json"));
  char *t = render(r, MD_FORMAT_TEXT);
  has(t, "mtrdiag report 20261129T021000Z-1a2b3c");
  has(t, "Diagnosis: DEGRADED, reverse path (cvm -> local)");
  has(t, "Packets from cvm to local are lost (25%)");
  has(t, "Suspect:  loss on the reverse path, link 198.18.4.1 (TTL 1) -> 198.18.6.1 (TTL 2), "
         "confidence 85%");
  has(t, "    1. Open a ticket with the operator of 198.18.6.1");
  has(t, "Forward path: local -> cvm (198.18.4.2)");
  has(t, "Reverse path: cvm -> local (198.18.1.1)");
  /* both directions in mtr's report layout */
  assert_int_equal(count(t, "Start: 2026-11-29T02:10:00+0000"), 2);
  has(t, "HOST: local.lab.test              Loss%   Snt   Last   Avg  Best  Wrst StDev\n");
  has(t, "HOST: cvm.lab.test                Loss%   Snt   Last   Avg  Best  Wrst StDev\n");
  has(t, "  2.|-- r2r.lab.test              30.0%    20   11.3  11.2  10.9  11.8   0.2\n");
  has(t, "       [MPLS: Lbl 16021 TC 0 S 1 TTL 1]\n");
  /* verdicts */
  has(t, "  Verdict: 20% loss from TTL 3 (198.18.3.2) to the destination");
  has(t, "  Verdict: 30% loss from TTL 2 (198.18.6.1) to the destination");
  /* the alignment side by side */
  has(t, "Alignment: asymmetric");
  has(t, "     1  198.18.1.2      |   3  198.18.5.1        link_mate\n");
  has(t, "     2  198.18.2.2      |                        forward only\n");
  has(t, "                        |   2  198.18.6.1        reverse only\n");
  has(t, "     3  198.18.3.2      |   1  198.18.4.1        same_ip\n");
  has(t, "One-way (agent-to-agent stream)");
  has(t, "400 sent, 300 received, 25.0% loss");
  has(t, "Follow-up probes");
  has(t, "why: the reply path from r2r to local avoids");
  hasnt(t, "Errors");
  free(t);
  md_report_free(r);

  r = load(FIXTURE("forward_only.json"));
  t = render(r, MD_FORMAT_TEXT);
  has(t, "B         203.0.113.7 (no agent: plain address 203.0.113.7)");
  has(t, "Reverse path: 203.0.113.7 -> local\nnot measured: 203.0.113.7 is no agent");
  hasnt(t, "Alignment:");
  hasnt(t, "One-way");
  free(t);
  md_report_free(r);

  r = load(FIXTURE("errors.json"));
  t = render(r, MD_FORMAT_TEXT);
  has(t, "Diagnosis: INCOMPLETE");
  has(t, "[run incomplete]");
  has(t, "not measured: cvm's run produced no path to local (see errors)");
  has(t, "Errors\n  cvm: unreachable: connect 198.18.4.2:7447: Connection refused\n");
  has(t, "  controller: timeout: whole-run limit of 30 s reached\n");
  free(t);
  md_report_free(r);
}

static void test_text_no_control_chars(void **state) {
  (void)state;
  md_report *r = load(FIXTURE("asymmetric.json"));
  set_name(r->forward, 1, "evil\x1b]0;owned\x07\x1b[31mred");
  free(r->diagnosis.summary);
  r->diagnosis.summary = strdup("line one\nline two\r\x1b[2J");
  free(r->errors);
  r->errors = NULL;
  r->n_errors = 0;
  md_report_add_error(r, "cvm\x1b[1m", "x", "msg \x9b \xc2\x9b end");
  char *t = render(r, MD_FORMAT_TEXT);
  hasnt(t, "\x1b");
  hasnt(t, "\x07");
  hasnt(t, "\r");
  hasnt(t, "\xc2\x9b");
  has(t, "evil?]0;owned??[31mred");
  has(t, "  line one line two ?[2J\n");
  free(t);
  md_report_free(r);
}

/* Long free text (a summary, an error message of 3000 bytes) is shown whole,
 * as the JSON holds it, not cut at a buffer's size. */
static void test_text_long_values(void **state) {
  (void)state;
  md_report *r = load(FIXTURE("asymmetric.json"));
  char longtext[3001];
  for (int i = 0; i < 3000; i++)
    longtext[i] = (char)('a' + i % 26);
  longtext[2999] = 'Z';
  longtext[3000] = '\0';
  free(r->diagnosis.summary);
  r->diagnosis.summary = strdup(longtext);
  md_report_add_error(r, "cvm", "x", "%s", longtext);
  char *t = render(r, MD_FORMAT_TEXT);
  char want[3100];
  snprintf(want, sizeof want, "  %s\n", longtext);
  has(t, want);
  snprintf(want, sizeof want, "  cvm: x: %s\n", longtext);
  has(t, want);
  free(t);
  md_report_free(r);
}

/* --- Markdown ------------------------------------------------------------------- */

static void test_markdown(void **state) {
  (void)state;
  md_report *r = load(FIXTURE("asymmetric.json"));
  char *m = render(r, MD_FORMAT_MARKDOWN);
  has(m, "## mtrdiag: degraded — fault on the reverse path (cvm → local)\n");
  has(m, "> Packets from cvm to local are lost (25%)");
  has(m, "| A | **local** — 198.18.1.1:7447");
  has(m, "### Diagnosis\n");
  has(m, "- **Suspect:** loss on the reverse path, link 198.18.4.1 (TTL 1) → 198.18.6.1 (TTL 2), "
         "confidence 85%\n");
  has(m, "**Advice**\n\n1. Open a ticket");
  /* both paths, fenced in mtr's layout, each with its verdict */
  has(m, "### Forward path: local → cvm (198.18.4.2)\n");
  has(m, "### Reverse path: cvm → local (198.18.1.1)\n");
  assert_int_equal(count(m, "```text\nStart: "), 2);
  has(m, "  4.|-- local.lab.test            30.0%    20   12.2  12.1  11.8  12.7   0.2\n```\n");
  has(m, "**Verdict:** 20% loss from TTL 3 (198.18.3.2) to the destination");
  has(m, "**Verdict:** 30% loss from TTL 2 (198.18.6.1)");
  has(m, "| Fwd TTL | Forward hop | Rev TTL | Reverse hop | How |\n|---:|---|---:|---|---|\n");
  has(m, "| 3 | 198.18.3.2 (r3.lab.test) | 1 | 198.18.4.1 (r3.lab.test) | same ip |\n");
  has(m, "| cvm → local | 400 | 300 | 25.0% | 6.4 ms | 0.4 ms |\n");
  free(m);
  md_report_free(r);

  r = load(FIXTURE("forward_only.json"));
  m = render(r, MD_FORMAT_MARKDOWN);
  has(m, "### Reverse path: 203.0.113.7 → local\n\n*not measured: 203.0.113.7 is no agent "
         "(forward path only)*\n"); /* no space before the closing '*' */
  hasnt(m, "### Alignment");
  free(m);
  md_report_free(r);
}

static void test_markdown_escaping(void **state) {
  (void)state;
  md_report *r = load(FIXTURE("errors.json")); /* hostnames "<script>..." and "<b>" */
  free(r->diagnosis.summary);
  r->diagnosis.summary = strdup("see <script>alert(1)</script> *now* [x](http://y) & `z`");
  char *m = render(r, MD_FORMAT_MARKDOWN);
  /* outside the fences markup characters are escaped */
  has(m, "> see \\<script>alert(1)\\</script> \\*now\\* \\[x\\](http://y) \\& \\`z\\`\n");
  has(m, "timeout after 25 s \\<img src=x onerror=alert(2)>");
  has(m, "| controller | timeout | whole-run limit of 30 s reached |");
  /* inside the mtr fence the text is verbatim (a code block shows it as is) */
  has(m, "  2.|-- <script>alert(1)</script> 40.0%");
  free(m);
  /* a hostname with backticks gets a longer fence; pipes and newlines
   * cannot break a table row */
  set_name(r->forward, 1, "a```b|c\nd");
  free(r->errors[0].message);
  r->errors[0].message = strdup("x | y\n| z");
  m = render(r, MD_FORMAT_MARKDOWN);
  has(m, "````text\nStart: ");
  has(m, "\n````\n");
  has(m, "  1.|-- a```b|c?d ");
  has(m, "| x \\| y \\| z |");
  free(m);
  md_report_free(r);
}

/* --- HTML ----------------------------------------------------------------------- */

static void test_html(void **state) {
  (void)state;
  md_report *r = load(FIXTURE("asymmetric.json"));
  char *h = render(r, MD_FORMAT_HTML);
  has(h, "<!DOCTYPE html>");
  has(h, "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'");
  hasnt(h, "<script");
  /* no external resource: the only URL is the SVG namespace */
  assert_int_equal(count(h, "://"), 1);
  has(h, "xmlns=\"http://www.w3.org/2000/svg\"");
  assert_int_equal(count(h, "<svg"), 1);
  assert_int_equal(count(h, "</svg>"), 1);
  /* both paths drawn: 4 forward hops, 4 reverse hops, 2 sources */
  assert_int_equal(count(h, "<g class=\"hop "), 8 + 5); /* + the 5 legend circles */
  assert_int_equal(count(h, "<g class=\"src\">"), 2);
  has(h, "<title>forward TTL 3: r3.lab.test (198.18.3.2)</title>");
  has(h, "<title>reverse TTL 2: r2r.lab.test (198.18.6.1)</title>");
  /* colours by loss; the rate-limited hop is not red */
  has(h, "<g class=\"hop ok\"><title>forward TTL 1:");
  has(h, "<g class=\"hop rl\"><title>forward TTL 2:");
  has(h, "<g class=\"hop bad\"><title>forward TTL 3:");
  has(h, "avg 11.9 ms · loss 20%");
  /* shared routers linked; the suspect link marked and labelled */
  assert_int_equal(count(h, "<line class=\"pair"), 4 + 1); /* 2 pairs, 2 endpoints, legend */
  has(h, "<path class=\"suspect\"");
  has(h, "<circle class=\"ring\"");
  has(h, ">suspect: loss</text>");
  has(h, ">confidence 85%</text>");
  has(h, "<line class=\"edge sus\"");
  /* the tables */
  has(h, "<section id=\"forward\"><h2>Forward path: local → cvm (198.18.4.2)</h2>");
  has(h, "<section id=\"reverse\"><h2>Reverse path: cvm → local (198.18.1.1)</h2>");
  has(h, "<strong>Verdict:</strong> 30% loss from TTL 2 (198.18.6.1) to the destination");
  has(h, "<section id=\"alignment\">");
  has(h, "<li>Open a ticket with the operator of 198.18.6.1 (r2r)");
  has(h, "<span class=\"badge degraded\">degraded</span>");
  has(h, "</html>\n");
  free(h);
  md_report_free(r);

  r = load(FIXTURE("forward_only.json"));
  h = render(r, MD_FORMAT_HTML);
  has(h, "reverse path not measured</text>");
  has(h, "203.0.113.7 is no agent: forward only</text>");
  has(h, "<p><em>Not measured: 203.0.113.7 is no agent");
  hasnt(h, "<section id=\"alignment\">");
  assert_int_equal(count(h, "<g class=\"src\">"), 1);
  free(h);
  md_report_free(r);
}

static void test_html_escaping(void **state) {
  (void)state;
  md_report *r = load(FIXTURE("errors.json"));
  free(r->a.name);
  r->a.name = strdup("lo\"cal' <x>");
  free(r->alignment.shared);
  r->alignment.shared = NULL;
  char *h = render(r, MD_FORMAT_HTML);
  hasnt(h, "<script");
  hasnt(h, "<img");
  hasnt(h, "<b>");
  hasnt(h, "<x>");
  has(h, "&lt;script&gt;alert(1)&lt;/script&gt;");
  has(h, "r3 &quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;.example");
  has(h, "timeout after 25 s &lt;img src=x onerror=alert(2)&gt;");
  has(h, "lo&quot;cal&#39; &lt;x&gt;");
  has(h, "<section id=\"errors\">");
  has(h, "<td>controller</td><td>timeout</td>");
  /* the silent hop is grey, drawn, and in the table */
  has(h, "<g class=\"hop none\"><title>forward TTL 3: ??"
         "?</title>");
  free(h);
  /* long names are cut in the drawing, whole in the tables; a cut never
   * splits a UTF-8 character */
  set_name(r->forward, 1, "ééééééééééééééééééééééééééééééééééééééééééééééééééééé.example");
  h = render(r, MD_FORMAT_HTML);
  has(h, ">éééééééééééééééééééééééééééééééééééééééééééé…</text>");
  has(h, "ééé.example (198.18.1.2)</td>");
  free(h);
  md_report_free(r);
}

static void test_render_empty_report(void **state) {
  (void)state;
  md_report *r = md_report_new(); /* a diagnosis that has only begun */
  for (int f = MD_FORMAT_TEXT; f <= MD_FORMAT_HTML; f++) {
    char *s = render(r, (md_format)f);
    assert_true(strlen(s) > 20);
    free(s);
  }
  FILE *devfull = fopen("/dev/full", "w");
  if (devfull) {
    setvbuf(devfull, NULL, _IONBF, 0);
    assert_int_equal(md_render_text(r, devfull), -EIO);
    fclose(devfull);
  }
  md_report_free(r);
}

/* --- Bundle --------------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

/* The whole of a file (caller frees). */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fail_msg("%s: %s", path, strerror(errno));
    abort();
  }
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  int c;
  while ((c = fgetc(f)) != EOF)
    fputc(c, mem);
  fclose(f);
  fclose(mem);
  return buf;
}

static void test_bundle(void **state) {
  (void)state;
  char tmpl[] = "/tmp/md-test-bundle-XXXXXX";
  char *base = mkdtemp(tmpl);
  assert_non_null(base);
  char dir[256], path[320];
  snprintf(dir, sizeof dir, "%s/new/out", base); /* missing parents too */
  md_report *r = load(FIXTURE("asymmetric.json"));
  char err[512];
  md_bundle_info info = {
      .user = "alice", .controller_host = "ops-1", .command = "mtrctl diagnose local cvm -o out"};
  mode_t old = umask(022);
  int rc = md_bundle_write(r, dir, &info, err, sizeof err);
  umask(old);
  if (rc)
    fail_msg("%s", err);
  struct stat st;
  assert_int_equal(stat(dir, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0755);
  static const char *files[] = {"report.json", "report.md", "report.html", "forward.txt",
                                "reverse.txt", "meta.json", "README.txt"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    if (stat(path, &st) != 0)
      fail_msg("%s missing", path);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_true(st.st_size > 0);
  }
  /* report.json reads back to the same report */
  snprintf(path, sizeof path, "%s/report.json", dir);
  md_report *back = md_report_load_json_file(path, err, sizeof err);
  if (!back)
    fail_msg("%s", err);
  char *a = md_report_to_json_string(r, 1), *b = md_report_to_json_string(back, 1);
  assert_string_equal(a, b);
  free(a);
  free(b);
  md_report_free(back);
  /* forward.txt / reverse.txt are mtr's report layout */
  snprintf(path, sizeof path, "%s/forward.txt", dir);
  char *t = slurp(path);
  assert_true(strncmp(t, "Start: 2026-11-29T02:10:00+0000\nHOST: local.lab.test ", 53) == 0);
  free(t);
  snprintf(path, sizeof path, "%s/reverse.txt", dir);
  t = slurp(path);
  has(t, "HOST: cvm.lab.test");
  has(t, "  2.|-- r2r.lab.test              30.0%");
  free(t);
  /* meta.json and README.txt: who, when, where from */
  snprintf(path, sizeof path, "%s/meta.json", dir);
  t = slurp(path);
  json_t *meta = json_loads(t, 0, NULL);
  assert_non_null(meta);
  assert_string_equal(json_string_value(json_object_get(meta, "user")), "alice");
  assert_string_equal(json_string_value(json_object_get(meta, "ran_by")), "ops");
  assert_string_equal(json_string_value(json_object_get(meta, "controller_host")), "ops-1");
  assert_string_equal(json_string_value(json_object_get(meta, "report_id")),
                      "20261129T021000Z-1a2b3c");
  assert_string_equal(json_string_value(json_object_get(meta, "controller_version")), MD_VERSION);
  assert_string_equal(json_string_value(json_object_get(meta, "command")),
                      "mtrctl diagnose local cvm -o out");
  assert_string_equal(json_string_value(json_object_get(meta, "started_at")),
                      "2026-11-29T02:10:00.100Z");
  json_t *agents = json_object_get(meta, "agents");
  assert_string_equal(json_string_value(json_object_get(json_object_get(agents, "b"), "version")),
                      "0.1.0");
  assert_string_equal(json_string_value(json_object_get(json_object_get(agents, "a"), "name")),
                      "local");
  assert_non_null(json_object_get(json_object_get(meta, "files"), "reverse.txt"));
  json_decref(meta);
  free(t);
  snprintf(path, sizeof path, "%s/README.txt", dir);
  t = slurp(path);
  has(t, "Ran by ops (user alice on ops-1, mtrctl " MD_VERSION ")");
  has(t, "  B: cvm, control address 198.18.4.2:7447, host cvm.lab.test, mtr-agent 0.1.0\n");
  has(t, "Command: mtrctl diagnose local cvm -o out\n");
  free(t);
  md_report_free(r);

  /* again into the same directory (replacing), forward only this time */
  r = load(FIXTURE("forward_only.json"));
  rc = md_bundle_write(r, dir, NULL, err, sizeof err);
  if (rc)
    fail_msg("%s", err);
  snprintf(path, sizeof path, "%s/reverse.txt", dir);
  t = slurp(path);
  assert_string_equal(t, "not measured: 203.0.113.7 is no agent (forward path only)\n");
  free(t);
  /* no temporary files left behind */
  snprintf(path, sizeof path, "%s/.report.json.", dir);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 7", dir);
  assert_int_equal(system(cmd), 0);

  /* errors name the file */
  snprintf(path, sizeof path, "%s/report.json", dir);
  rc = md_bundle_write(r, path, NULL, err, sizeof err); /* a file, not a directory */
  assert_int_equal(rc, -ENOTDIR);
  has(err, path);
  has(err, "not a directory");
  snprintf(path, sizeof path, "%s/report.json/sub", dir);
  rc = md_bundle_write(r, path, NULL, err, sizeof err);
  assert_int_equal(rc, -ENOTDIR);
  has(err, "report.json");
  /* a directory we cannot write to (as root: a read-only bind is not
   * available, so use a name that is too long) */
  char longname[600];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  snprintf(path, sizeof path, "%s/", dir);
  char *deep = malloc(strlen(dir) + sizeof longname + 2);
  sprintf(deep, "%s/%s", dir, longname);
  rc = md_bundle_write(r, deep, NULL, err, sizeof err);
  assert_true(rc < 0);
  has(err, "xxxx");
  free(deep);
  assert_int_equal(md_bundle_write(r, "", NULL, err, sizeof err), -EINVAL);
  md_report_free(r);
  nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_format_names),
      cmocka_unit_test(test_align_rows),
      cmocka_unit_test(test_hop_name),
      cmocka_unit_test(test_text),
      cmocka_unit_test(test_text_no_control_chars),
      cmocka_unit_test(test_text_long_values),
      cmocka_unit_test(test_markdown),
      cmocka_unit_test(test_markdown_escaping),
      cmocka_unit_test(test_html),
      cmocka_unit_test(test_html_escaping),
      cmocka_unit_test(test_render_empty_report),
      cmocka_unit_test(test_bundle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
