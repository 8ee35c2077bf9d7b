/* md_path_render: a path as text and as JSON.
 *
 * The report layout is mtr 0.95's --report, checked against the real mtr
 * on a namespace lab (docs in md_path.h). Its quirks are mtr's and kept on
 * purpose, so that scripts which parse mtr reports parse ours:
 *   - without -w the host column is 33 characters from the start of the
 *     line, and the statistics are written from there, over whatever of a
 *     long name did not fit (names show 25 characters, HOST: 27);
 *   - with -w the column is as wide as the longest name, and the rows sit
 *     two characters further right than the header (" NN.|-- " is 8
 *     characters, "HOST: " 6);
 *   - "100.0" loses its "%" to the next column;
 *   - figures are mtr's whole microseconds, shown in ms with one decimal;
 *   - the other responders of a hop follow on lines of 8 spaces and the
 *     name padded to the host column.
 * Where we differ:
 *   - mtr shows on the hop line the responder that answered last, and
 *     below it the others but the first (its list starts with the hop
 *     line's host as long as the last responder is the first); we show the
 *     first responder on the hop line and every other one below;
 *   - mtr 0.95 -r -e prints labels only at hops with several responders
 *     (the hop line's after the first continuation line), never at a hop
 *     with one (mtr PR #391); we print each responder's labels under its
 *     own line, in the form mtr -r -e -z uses, "       [MPLS: Lbl 24001 TC
 *     0 S 1 TTL 255]", with the S bit as a number (mtr prints it "%cu",
 *     a control character and a "u").
 * mtr's figures come from int arithmetic that drifts (see md_stats.c); ours
 * do not, so a long run may differ from mtr's in the last digit.
 */
#include "md_path.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "md_time.h"

/* --- Figures as mtr shows them --------------------------------------------- */

/* mtr keeps whole microseconds (ints) and divides by 1000.0 to print. */
static double mtr_ms(double us) {
  return us > 0 ? floor(us) / 1000.0 : 0.0;
}

/* mtr's net_loss(): thousandths of a percent, truncated, from
 * 100 - 100 * returned / (xmit - transit). */
static int mtr_loss_milli(const md_stats *s) {
  if (s->transit >= s->sent)
    return 0;
  double done = (double)(s->sent - s->transit);
  double v = 1000.0 * (100.0 - 100.0 * s->recv / done);
  return v > 0 ? (int)v : 0;
}

/* Standard deviation in µs (mtr's net_stdev() before its int cast). */
static double stdev_us(const md_stats *s) {
  if (s->recv < 2 || !(s->ssd_us > 0))
    return 0.0;
  return sqrt(s->ssd_us / (s->recv - 1.0));
}

/* --- The report (mtr --report) ---------------------------------------------- */

#define REPORT_HOST_COL 33 /* mtr's len_hosts without -w */
#define REPORT_NAME_MAX 81 /* mtr formats a name into 81 bytes */
#define REPORT_LINE_MAX 1024

/* mtr's default columns, "LS NABWV". */
enum field { F_LOSS, F_SNT, F_GAP, F_LAST, F_AVG, F_BEST, F_WRST, F_STDEV };
static const struct {
  const char *title;
  int width;
} fields[] = {
    [F_LOSS] = {"Loss%", 6}, [F_SNT] = {"Snt", 6},     [F_GAP] = {" ", 1},
    [F_LAST] = {"Last", 6},  [F_AVG] = {"Avg", 6},     [F_BEST] = {"Best", 6},
    [F_WRST] = {"Wrst", 6},  [F_STDEV] = {"StDev", 6},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

/* snprintf at an offset that may be past the buffer: mtr writes each
 * column at a fixed offset, over what was there. */
static void put_at(char *buf, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void put_at(char *buf, size_t pos, const char *fmt, ...) {
  if (pos >= REPORT_LINE_MAX)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + pos, REPORT_LINE_MAX - pos, fmt, ap);
  va_end(ap);
}

/* One column of a hop line, in mtr's format for it. */
static void put_field(char *buf, size_t pos, enum field f, const md_stats *s) {
  switch (f) {
  case F_LOSS:
    put_at(buf, pos, " %4.1f%%", mtr_loss_milli(s) / 1000.0);
    break;
  case F_SNT:
    put_at(buf, pos, " %5d", (int)s->sent);
    break;
  case F_GAP:
    put_at(buf, pos, " ");
    break;
  case F_LAST:
    put_at(buf, pos, " %5.1f", s->recv ? mtr_ms(s->last_us) : 0.0);
    break;
  case F_AVG:
    put_at(buf, pos, " %5.1f", s->recv ? mtr_ms(s->avg_us) : 0.0);
    break;
  case F_BEST:
    put_at(buf, pos, " %5.1f", s->recv ? mtr_ms(s->best_us) : 0.0);
    break;
  case F_WRST:
    put_at(buf, pos, " %5.1f", s->recv ? mtr_ms(s->worst_us) : 0.0);
    break;
  case F_STDEV:
    put_at(buf, pos, " %5.1f", mtr_ms(stdev_us(s)));
    break;
  }
}

/* mtr's snprint_addr(): the hostname (with -b "hostname (ip)") else the IP,
 * cut to what mtr's buffer holds. Returns the uncut length, which is what
 * -w sizes the column by. */
static size_t host_name(const md_host *h, unsigned flags, char *buf, size_t len) {
  char ip[MD_ADDRSTRLEN];
  if (!h)
    return (size_t)snprintf(buf, len, "???");
  md_addr_str(&h->addr, ip, sizeof ip);
  int n;
  if (!h->hostname)
    n = snprintf(buf, len, "%s", ip);
  else if (flags & MD_REPORT_SHOW_IPS)
    n = snprintf(buf, len, "%s (%s)", h->hostname, ip);
  else
    n = snprintf(buf, len, "%s", h->hostname);
  return n > 0 ? (size_t)n : 0;
}

/* The hop line's responder: the first to answer, NULL for a silent hop. */
static const md_host *hop_main(const md_hop *h) {
  return h->n_hosts > 0 ? &h->hosts[0] : NULL;
}

/* -w: the longest of the local name and the hop lines' names. */
static size_t wide_column(const md_path *p, const char *local, unsigned flags) {
  size_t w = strlen(local);
  char name[REPORT_NAME_MAX];
  for (int i = 0; i < p->n_hops; i++) {
    size_t n = host_name(hop_main(&p->hops[i]), flags, name, sizeof name);
    if (n > w)
      w = n;
  }
  return w > REPORT_LINE_MAX / 2 ? REPORT_LINE_MAX / 2 : w;
}

/* "Start: 2026-11-29T02:14:39+0000": mtr's iso_time(), local time. */
static void report_start(const md_path *p, FILE *out) {
  time_t t = (time_t)(p->started_at_ns / 1000000000);
  struct tm tm;
  char when[64] = "";
  if (localtime_r(&t, &tm))
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S%z", &tm);
  fprintf(out, "Start: %s\n", when);
}

/* mtr -e's label lines, under the responder that sent them. */
static void report_mpls(const md_host *h, FILE *out) {
  for (int k = 0; h && k < h->n_mpls && k < MD_MAX_MPLS; k++)
    fprintf(out, "       [MPLS: Lbl %" PRIu32 " TC %u S %u TTL %u]\n", h->mpls[k].label,
            (unsigned)h->mpls[k].tc, (unsigned)h->mpls[k].s, (unsigned)h->mpls[k].ttl);
}

/* One hop: its line, then each other responder's, with MPLS under each. */
static void report_hop(const md_hop *h, FILE *out, size_t col, unsigned flags) {
  char buf[REPORT_LINE_MAX];
  char name[REPORT_NAME_MAX];
  const md_host *main_host = hop_main(h);
  host_name(main_host, flags, name, sizeof name);
  snprintf(buf, sizeof buf, " %2d.|-- %-*s", h->ttl, (int)col, name);
  size_t pos = (flags & MD_REPORT_WIDE) ? strlen(buf) : col;
  for (size_t f = 0; f < N_FIELDS; f++) {
    put_field(buf, pos, (enum field)f, &h->st);
    pos += (size_t)fields[f].width;
  }
  fprintf(out, "%s\n", buf);
  if (flags & MD_REPORT_MPLS)
    report_mpls(main_host, out);
  for (int i = 1; i < h->n_hosts; i++) {
    host_name(&h->hosts[i], flags, name, sizeof name);
    fprintf(out, "        %-*s\n", (int)col, name);
    if (flags & MD_REPORT_MPLS)
      report_mpls(&h->hosts[i], out);
  }
}

/* mtr --report, with -e/-w/-b as flags. */
void md_path_render_report_ex(const md_path *p, FILE *out, const char *local_host, unsigned flags) {
  if (!p || !out)
    return;
  const char *local = local_host ? local_host : (p->source ? p->source : "");
  size_t col = (flags & MD_REPORT_WIDE) ? wide_column(p, local, flags) : REPORT_HOST_COL;
  report_start(p, out);

  char buf[REPORT_LINE_MAX];
  snprintf(buf, sizeof buf, "HOST: %-*s", (int)col, local);
  size_t pos = (flags & MD_REPORT_WIDE) ? strlen(buf) : col;
  for (size_t f = 0; f < N_FIELDS; f++) {
    put_at(buf, pos, "%*s", fields[f].width, fields[f].title);
    pos += (size_t)fields[f].width;
  }
  fprintf(out, "%s\n", buf);

  for (int i = 0; i < p->n_hops; i++)
    report_hop(&p->hops[i], out, col, flags);
}

/* mtr --report [-e]: what forward.txt and reverse.txt hold. */
void md_path_render_report(const md_path *p, FILE *out, const char *local_host, bool show_mpls) {
  md_path_render_report_ex(p, out, local_host, show_mpls ? MD_REPORT_MPLS : 0);
}

/* --- mtr --split -------------------------------------------------------------- */

#define SPLIT_LINE_MAX 256 /* mtr's MAX_LINE_SIZE */

/* mtr's split_redraw() line for one hop, without the leading TTL. */
int md_path_split_line(const md_path *p, int ttl, char *buf, size_t len) {
  const md_hop *h = md_path_hop_at(p, ttl);
  const md_host *host = h ? hop_main(h) : NULL;
  if (!host)
    return snprintf(buf, len, "???");
  char ip[MD_ADDRSTRLEN];
  const char *name = host->hostname ? host->hostname : md_addr_str(&host->addr, ip, sizeof ip);
  const md_stats *s = &h->st;
  long best = 0, avg = 0, worst = 0;
  if (s->recv) {
    best = (long)floor(s->best_us) / 1000;
    avg = (long)floor(s->avg_us) / 1000;
    worst = (long)floor(s->worst_us) / 1000;
  }
  return snprintf(buf, len, "%s %d %d %d %ld %ld %ld", name, mtr_loss_milli(s), (int)s->recv,
                  (int)s->sent, best, avg, worst);
}

/* One "TTL ..." line, whether or not it changed. */
void md_path_render_split(const md_path *p, int ttl, FILE *out) {
  char line[SPLIT_LINE_MAX];
  md_path_split_line(p, ttl, line, sizeof line);
  fprintf(out, "%d %s\n", ttl, line);
}

struct md_split {
  int line_count; /* lines mtr believes the reader has; -1 before the first update */
  char lines[MD_MAX_TTL + 1][SPLIT_LINE_MAX];
};

/* Every line starts as "???", so silent hops are never printed, as in mtr. */
md_split *md_split_new(void) {
  md_split *s = malloc(sizeof *s);
  if (!s)
    return NULL;
  s->line_count = -1;
  for (int i = 0; i <= MD_MAX_TTL; i++)
    snprintf(s->lines[i], SPLIT_LINE_MAX, "???");
  return s;
}

/* mtr's split_redraw(): "-N" for lines gone since the last update (from
 * the highest down), then "TTL line" for every line that changed. */
void md_split_update(md_split *s, const md_path *p, FILE *out) {
  if (!s || !p || !out)
    return;
  int max = p->n_hops > 0 ? p->first_ttl + p->n_hops - 1 : 0;
  for (int i = s->line_count; i > max; i--) {
    fprintf(out, "-%d\n", i);
    s->line_count--;
  }
  char line[SPLIT_LINE_MAX];
  for (int ttl = 1; ttl <= max; ttl++) {
    md_path_split_line(p, ttl, line, sizeof line);
    if (strcmp(line, s->lines[ttl]) == 0)
      continue;
    fprintf(out, "%d %s\n", ttl, line);
    memcpy(s->lines[ttl], line, sizeof line);
    if (s->line_count < ttl)
      s->line_count = ttl;
  }
  fflush(out);
}

void md_split_free(md_split *s) {
  free(s);
}

/* --- JSON: the PATH object ------------------------------------------------------ */

/* µs to ms, rounded to the µs: the report's precision, stable on re-export. */
static double json_ms(double us) {
  return us > 0 ? round(us) / 1000.0 : 0.0;
}

/* An RFC 3339 string, or null for an unset (0) time. */
static json_t *json_time(int64_t ns) {
  char buf[40];
  return ns ? json_string(md_time_rfc3339(ns, buf, sizeof buf)) : json_null();
}

/* The hosts of a hop: ip, hostname (null until DNS answers), count, mpls. */
static json_t *hosts_to_json(const md_hop *h) {
  json_t *arr = json_array();
  for (int i = 0; arr && i < h->n_hosts; i++) {
    const md_host *host = &h->hosts[i];
    json_t *mpls = json_array();
    for (int k = 0; mpls && k < host->n_mpls && k < MD_MAX_MPLS; k++) {
      const md_mpls *m = &host->mpls[k];
      if (json_array_append_new(mpls, json_pack("{s:I, s:i, s:i, s:i}", "label",
                                                (json_int_t)m->label, "tc", (int)m->tc, "s",
                                                (int)m->s, "ttl", (int)m->ttl)) != 0) {
        json_decref(mpls);
        mpls = NULL;
      }
    }
    char ip[MD_ADDRSTRLEN];
    md_addr_str(&host->addr, ip, sizeof ip);
    json_t *o = mpls ? json_pack("{s:s, s:s?, s:I, s:o}", "ip", ip, "hostname", host->hostname,
                                 "count", (json_int_t)host->count, "mpls", mpls)
                     : NULL;
    if (json_array_append_new(arr, o) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  return arr;
}

/* One HOP of CONTRACT.md. */
static json_t *hop_to_json(const md_hop *h) {
  const md_stats *s = &h->st;
  json_t *hosts = hosts_to_json(h);
  if (!hosts)
    return NULL;
  double loss = round(md_stats_loss_pct(s) * 1000.0) / 1000.0;
  bool r = s->recv > 0;
  return json_pack("{s:i, s:o, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, "
                   "s:f, s:f}",
                   "ttl", h->ttl, "hosts", hosts, "sent", (json_int_t)s->sent, "recv",
                   (json_int_t)s->recv, "drop", (json_int_t)md_stats_drop(s), "loss_pct", loss,
                   "last_ms", r ? json_ms(s->last_us) : 0.0, "avg_ms", r ? json_ms(s->avg_us) : 0.0,
                   "best_ms", r ? json_ms(s->best_us) : 0.0, "worst_ms",
                   r ? json_ms(s->worst_us) : 0.0, "stdev_ms", json_ms(stdev_us(s)), "gmean_ms",
                   r ? json_ms(s->gmean_us) : 0.0, "jitter_ms", r ? json_ms(s->jitter_us) : 0.0,
                   "javg_ms", r ? json_ms(s->javg_us) : 0.0, "jmax_ms",
                   r ? json_ms(s->jmax_us) : 0.0, "jint_ms", r ? json_ms(s->jinta_us) : 0.0);
}

/* The PATH object: what report.json holds per direction. */
json_t *md_path_to_json(const md_path *p) {
  if (!p)
    return NULL;
  json_t *hops = json_array();
  for (int i = 0; hops && i < p->n_hops; i++) {
    if (json_array_append_new(hops, hop_to_json(&p->hops[i])) != 0) {
      json_decref(hops);
      hops = NULL;
    }
  }
  if (!hops)
    return NULL;
  return json_pack("{s:s?, s:s?, s:s?, s:o, s:o, s:b, s:b, s:o, s:n}", "source", p->source,
                   "target", p->target, "target_name", p->target_name, "started_at",
                   json_time(p->started_at_ns), "finished_at", json_time(p->finished_at_ns),
                   "complete", (int)p->complete, "reached", (int)p->reached, "hops", hops,
                   "verdict");
}

/* --- JSON: back to a path ---------------------------------------------------------- */

/* Errors name the field by its place: "hops[2].hosts[0].ip". */
typedef struct jerr {
  char *buf;
  size_t len;
} jerr;

static int fail(jerr *e, const char *where, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Write "where.key: message" and return -EINVAL. */
static int fail(jerr *e, const char *where, const char *key, const char *fmt, ...) {
  if (e->buf && e->len) {
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(e->buf, e->len, "%s%s%s: %s", where, (where[0] && key[0]) ? "." : "", key, msg);
  }
  return -EINVAL;
}

/* A required member. */
static int get(const json_t *o, const char *where, const char *key, const json_t **v, jerr *e) {
  *v = json_object_get(o, key);
  return *v ? 0 : fail(e, where, key, "missing");
}

/* A string member (or null when nullable: *out NULL). */
static int get_str(const json_t *o, const char *where, const char *key, bool nullable,
                   const char **out, jerr *e) {
  const json_t *v;
  if (get(o, where, key, &v, e))
    return -EINVAL;
  if (nullable && json_is_null(v)) {
    *out = NULL;
    return 0;
  }
  if (!json_is_string(v))
    return fail(e, where, key, nullable ? "expected a string or null" : "expected a string");
  *out = json_string_value(v);
  return 0;
}

/* An integer member within [min, max]. */
static int get_int(const json_t *o, const char *where, const char *key, json_int_t min,
                   json_int_t max, json_int_t *out, jerr *e) {
  const json_t *v;
  if (get(o, where, key, &v, e))
    return -EINVAL;
  if (!json_is_integer(v))
    return fail(e, where, key, "expected an integer");
  json_int_t n = json_integer_value(v);
  if (n < min || n > max)
    return fail(e, where, key,
                "%" JSON_INTEGER_FORMAT " out of range %" JSON_INTEGER_FORMAT
                "..%" JSON_INTEGER_FORMAT,
                n, min, max);
  *out = n;
  return 0;
}

/* A finite number member within [0, max]. */
static int get_num(const json_t *o, const char *where, const char *key, double max, double *out,
                   jerr *e) {
  const json_t *v;
  if (get(o, where, key, &v, e))
    return -EINVAL;
  if (!json_is_number(v))
    return fail(e, where, key, "expected a number");
  double d = json_number_value(v);
  if (!isfinite(d) || d < 0 || d > max)
    return fail(e, where, key, "%g out of range 0..%g", d, max);
  *out = d;
  return 0;
}

/* A boolean member. */
static int get_bool(const json_t *o, const char *where, const char *key, bool *out, jerr *e) {
  const json_t *v;
  if (get(o, where, key, &v, e))
    return -EINVAL;
  if (!json_is_boolean(v))
    return fail(e, where, key, "expected true or false");
  *out = json_is_true(v);
  return 0;
}

/* An array member with at most max entries. */
static int get_array(const json_t *o, const char *where, const char *key, size_t max,
                     const json_t **out, jerr *e) {
  if (get(o, where, key, out, e))
    return -EINVAL;
  if (!json_is_array(*out))
    return fail(e, where, key, "expected an array");
  if (json_array_size(*out) > max)
    return fail(e, where, key, "more than %zu entries", max);
  return 0;
}


/* A time member: RFC 3339 or null (unset, 0). */
static int get_time(const json_t *o, const char *where, const char *key, int64_t *out, jerr *e) {
  const char *s;
  if (get_str(o, where, key, true, &s, e))
    return -EINVAL;
  *out = 0;
  if (s && md_time_parse_rfc3339(s, out) != 0)
    return fail(e, where, key, "not an RFC 3339 time");
  return 0;
}

/* One MPLS label entry into m. */
static int mpls_from_json(const json_t *o, const char *where, md_mpls *m, jerr *e) {
  json_int_t label, tc, sbit, ttl;
  if (!json_is_object(o))
    return fail(e, where, "", "expected an object");
  if (get_int(o, where, "label", 0, 0xFFFFF, &label, e) || get_int(o, where, "tc", 0, 7, &tc, e) ||
      get_int(o, where, "s", 0, 1, &sbit, e) || get_int(o, where, "ttl", 0, 255, &ttl, e))
    return -EINVAL;
  m->label = (uint32_t)label;
  m->tc = (uint8_t)tc;
  m->s = (uint8_t)sbit;
  m->ttl = (uint8_t)ttl;
  return 0;
}

/* One responder of a hop, added to h. */
static int host_from_json(const json_t *o, const char *where, md_hop *h, jerr *e) {
  const char *ip, *hostname;
  json_int_t count;
  const json_t *mpls;
  md_addr addr;
  md_mpls stack[MD_MAX_MPLS];
  if (!json_is_object(o))
    return fail(e, where, "", "expected an object");
  if (get_str(o, where, "ip", false, &ip, e) || get_str(o, where, "hostname", true, &hostname, e) ||
      get_int(o, where, "count", 0, UINT32_MAX, &count, e) ||
      get_array(o, where, "mpls", MD_MAX_MPLS, &mpls, e))
    return -EINVAL;
  if (md_addr_parse(ip, &addr) != 0)
    return fail(e, where, "ip", "not an IP address");
  if (md_hop_find_host(h, &addr))
    return fail(e, where, "ip", "%s listed twice", ip);
  size_t n = json_array_size(mpls);
  for (size_t k = 0; k < n; k++) {
    char at[96];
    snprintf(at, sizeof at, "%s.mpls[%zu]", where, k);
    if (mpls_from_json(json_array_get(mpls, k), at, &stack[k], e))
      return -EINVAL;
  }
  md_host *host = md_hop_add_host(h, &addr, stack, (int)n);
  if (!host || md_host_set_hostname(host, hostname) != 0)
    return fail(e, where, "", "out of memory");
  host->count = (uint32_t)count;
  return 0;
}

/* The statistics of a hop; the internal accumulators are rebuilt from the
 * reported figures (ssd from stdev), transit from sent - recv - drop. */
static int stats_from_json(const json_t *o, const char *where, md_stats *s, jerr *e) {
  json_int_t sent, recv, drop;
  double loss, v[10];
  static const char *const keys[10] = {"last_ms",  "avg_ms",    "best_ms", "worst_ms", "stdev_ms",
                                       "gmean_ms", "jitter_ms", "javg_ms", "jmax_ms",  "jint_ms"};
  if (get_int(o, where, "sent", 0, UINT32_MAX, &sent, e) ||
      get_int(o, where, "recv", 0, UINT32_MAX, &recv, e) ||
      get_int(o, where, "drop", 0, UINT32_MAX, &drop, e) ||
      get_num(o, where, "loss_pct", 100.0, &loss, e))
    return -EINVAL;
  if (recv + drop > sent)
    return fail(e, where, "drop", "recv + drop is more than sent");
  for (int i = 0; i < 10; i++)
    if (get_num(o, where, keys[i], 1e9, &v[i], e))
      return -EINVAL;
  md_stats_init(s);
  s->sent = (uint32_t)sent;
  s->recv = (uint32_t)recv;
  s->transit = (uint32_t)(sent - recv - drop);
  s->last_us = v[0] * 1000.0;
  s->avg_us = v[1] * 1000.0;
  s->best_us = v[2] * 1000.0;
  s->worst_us = v[3] * 1000.0;
  s->ssd_us = recv > 1 ? (v[4] * 1000.0) * (v[4] * 1000.0) * (double)(recv - 1) : 0.0;
  s->gmean_us = v[5] * 1000.0;
  s->jitter_us = v[6] * 1000.0;
  s->javg_us = v[7] * 1000.0;
  s->jmax_us = v[8] * 1000.0;
  s->jinta_us = v[9] * 1000.0;
  return 0;
}

/* One HOP into the path; hops must come in TTL order without gaps. */
static int hop_from_json(const json_t *o, size_t i, md_path *p, jerr *e) {
  char where[32];
  snprintf(where, sizeof where, "hops[%zu]", i);
  if (!json_is_object(o))
    return fail(e, where, "", "expected an object");
  json_int_t ttl;
  const json_t *hosts;
  if (get_int(o, where, "ttl", 1, MD_MAX_TTL, &ttl, e))
    return -EINVAL;
  if (ttl != p->first_ttl + (json_int_t)i)
    return fail(e, where, "ttl",
                "%" JSON_INTEGER_FORMAT " where %d was expected (hops are "
                "contiguous)",
                ttl, p->first_ttl + (int)i);
  if (get_array(o, where, "hosts", MD_MAX_HOSTS, &hosts, e))
    return -EINVAL;
  md_hop *h = md_path_hop(p, (int)ttl);
  if (!h)
    return fail(e, where, "", "out of memory");
  if (stats_from_json(o, where, &h->st, e))
    return -EINVAL;
  for (size_t k = 0; k < json_array_size(hosts); k++) {
    char at[64];
    snprintf(at, sizeof at, "%s.hosts[%zu]", where, k);
    if (host_from_json(json_array_get(hosts, k), at, h, e))
      return -EINVAL;
  }
  return 0;
}

/* A stored PATH back into a path, checking every field on the way. */
md_path *md_path_from_json(const json_t *j, char *err, size_t errlen) {
  jerr e = {err, errlen};
  if (err && errlen)
    err[0] = '\0';
  if (!json_is_object(j)) {
    fail(&e, "PATH", "", "expected an object");
    return NULL;
  }
  const char *source, *target, *target_name;
  int64_t started, finished;
  bool complete = false, reached = false;
  const json_t *hops;
  if (get_str(j, "", "source", true, &source, &e) || get_str(j, "", "target", true, &target, &e) ||
      get_str(j, "", "target_name", true, &target_name, &e) ||
      get_time(j, "", "started_at", &started, &e) ||
      get_time(j, "", "finished_at", &finished, &e) || get_bool(j, "", "complete", &complete, &e) ||
      get_bool(j, "", "reached", &reached, &e) || get_array(j, "", "hops", MD_MAX_TTL, &hops, &e))
    return NULL;
  int first_ttl = 1;
  if (json_array_size(hops) > 0) {
    const json_t *h0 = json_array_get(hops, 0);
    const json_t *t0 = json_is_object(h0) ? json_object_get(h0, "ttl") : NULL;
    if (json_is_integer(t0) && json_integer_value(t0) >= 1 && json_integer_value(t0) <= MD_MAX_TTL)
      first_ttl = (int)json_integer_value(t0);
  }
  md_path *p = md_path_new(source, target, target_name, first_ttl);
  if (!p) {
    fail(&e, "PATH", "", "out of memory");
    return NULL;
  }
  p->started_at_ns = started;
  p->finished_at_ns = finished;
  p->complete = complete;
  p->reached = reached;
  for (size_t i = 0; i < json_array_size(hops); i++) {
    if (hop_from_json(json_array_get(hops, i), i, p, &e)) {
      md_path_free(p);
      return NULL;
    }
  }
  return p;
}
