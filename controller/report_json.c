/* report_json: md_report <-> the report JSON of CONTRACT.md.
 *
 * Writing builds the object in the contract's key order (jansson keeps
 * insertion order). Strings that are not valid UTF-8 (a name from a peer
 * that does not check) are written with '?' for each bad byte rather than
 * failing the whole report.
 *
 * Reading checks every contract field's presence, type and range, and the
 * additions when present; a message names the first bad field by its place
 * ("diagnosis.suspect.kind: expected one of loss|latency|...").
 */
#include "report_json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "md_time.h"

#define MAX_LIST 100000             /* entries in any list of a report */
#define MAX_FILE (64 * 1024 * 1024) /* a report file larger than this is refused */

/* --- Writing ------------------------------------------------------------------ */

/* Round to 3 decimals: ms to the µs, percentages to 0.001. */
double md_round3(double x) {
  if (!isfinite(x))
    return 0.0;
  double r = round(x * 1000.0) / 1000.0;
  return r == 0.0 ? 0.0 : r; /* no "-0.0" */
}

/* Length of the valid UTF-8 sequence at s (as jansson checks it: no
 * overlong forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s) {
  unsigned c = s[0];
  size_t n;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

/* A JSON string for s (null for NULL), bad UTF-8 bytes replaced by '?'. */
static json_t *jstr(const char *s) {
  if (!s)
    return json_null();
  json_t *j = json_string(s);
  if (j)
    return j;
  size_t len = strlen(s);
  char *fixed = malloc(len + 1);
  if (!fixed)
    return NULL;
  const unsigned char *p = (const unsigned char *)s;
  size_t o = 0;
  while (*p) {
    size_t n = utf8_seq(p);
    if (n == 0) {
      fixed[o++] = '?';
      p++;
    } else {
      memcpy(fixed + o, p, n);
      o += n;
      p += n;
    }
  }
  fixed[o] = '\0';
  j = json_string(fixed);
  free(fixed);
  return j;
}

/* Set o[k] = v (stealing v); *ok cleared when v is NULL or setting fails. */
static void put(json_t *o, const char *k, json_t *v, bool *ok) {
  if (!v) {
    *ok = false;
    return;
  }
  if (json_object_set_new(o, k, v) != 0)
    *ok = false;
}

/* A rounded number. */
static json_t *jnum(double x) {
  return json_real(md_round3(x));
}

/* A TTL, or null for 0 (unset). */
static json_t *jttl(int ttl) {
  return ttl > 0 ? json_integer(ttl) : json_null();
}

/* An RFC 3339 time, or null for 0 (unset). */
static json_t *jtime(int64_t ns) {
  char buf[40];
  return ns ? json_string(md_time_rfc3339(ns, buf, sizeof buf)) : json_null();
}

/* [v0, v1, ...] of integers. */
static json_t *int_array(const int *v, int n) {
  json_t *a = json_array();
  for (int i = 0; a && v && i < n; i++)
    if (json_array_append_new(a, json_integer(v[i])) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

/* [s0, s1, ...] of strings. */
static json_t *str_array(char *const *v, int n) {
  json_t *a = json_array();
  for (int i = 0; a && v && i < n; i++)
    if (json_array_append_new(a, jstr(v[i] ? v[i] : "")) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

/* Finish an object built with put(): it, or NULL (and freed) on failure. */
static json_t *done(json_t *o, bool ok) {
  if (!ok) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* The PATH.verdict object, or null when not present. */
json_t *md_path_verdict_to_json(const md_path_verdict *v) {
  if (!v || !v->present)
    return json_null();
  json_t *o = json_object();
  bool ok = o != NULL;
  if (!ok)
    return NULL;
  put(o, "destination_loss_pct", jnum(v->destination_loss_pct), &ok);
  put(o, "first_loss_ttl", jttl(v->first_loss_ttl), &ok);
  put(o, "first_loss_ip", jstr(v->first_loss_ip), &ok);
  put(o, "segment", json_string(md_segment_name(v->segment)), &ok);
  put(o, "rate_limited_ttls", int_array(v->rate_limited_ttls, v->n_rate_limited), &ok);
  put(o, "latency_jump_ttl", jttl(v->latency_jump_ttl), &ok);
  put(o, "text", jstr(v->text ? v->text : ""), &ok);
  return done(o, ok);
}

/* A PATH with its verdict, or null for no path. */
static json_t *path_json(const md_path *p, const md_path_verdict *v) {
  if (!p)
    return json_null();
  json_t *o = md_path_to_json(p);
  if (!o)
    return NULL;
  bool ok = true;
  put(o, "verdict", md_path_verdict_to_json(v), &ok);
  return done(o, ok);
}

/* AGENT: name, address, probe_address, hostname, version, clock_offset_ms
 * (null until the agent has answered), and is_agent (false: B is a plain
 * address). */
static json_t *agent_json(const md_report_agent *a) {
  json_t *o = json_object();
  bool ok = o != NULL;
  if (!ok)
    return NULL;
  put(o, "name", jstr(a->name), &ok);
  put(o, "address", jstr(a->address), &ok);
  put(o, "probe_address", jstr(a->probe_address), &ok);
  put(o, "hostname", jstr(a->hostname), &ok);
  put(o, "version", jstr(a->version), &ok);
  /* known once the agent has answered (HelloAck gives the version) */
  put(o, "clock_offset_ms", a->present && a->version ? jnum(a->clock_offset_ms) : json_null(), &ok);
  put(o, "is_agent", json_boolean(a->present), &ok);
  return done(o, ok);
}

/* The run's options: the contract's five, then the rest of mtr's. */
static json_t *options_json(const md_report_options *op) {
  json_t *o = json_object();
  bool ok = o != NULL;
  if (!ok)
    return NULL;
  put(o, "protocol", jstr(op->protocol), &ok);
  put(o, "cycles", json_integer(op->cycles), &ok);
  put(o, "interval_ms", json_integer(op->interval_ms), &ok);
  put(o, "psize", json_integer(op->psize), &ok);
  put(o, "max_ttl", json_integer(op->max_ttl), &ok);
  put(o, "first_ttl", json_integer(op->first_ttl), &ok);
  put(o, "port", json_integer(op->port), &ok);
  put(o, "tos", json_integer(op->tos), &ok);
  put(o, "no_dns", json_boolean(op->no_dns), &ok);
  put(o, "family", json_integer(op->family), &ok);
  return done(o, ok);
}

/* alignment: asymmetric, shared pairs, the TTLs only one path has. */
static json_t *alignment_json(const md_alignment *al) {
  json_t *o = json_object(), *shared = json_array();
  bool ok = o && shared;
  for (int i = 0; ok && al->shared && i < al->n_shared; i++) {
    const md_align_pair *p = &al->shared[i];
    json_t *e = json_pack("{s:i, s:i, s:o}", "forward_ttl", p->forward_ttl, "reverse_ttl",
                          p->reverse_ttl, "how", jstr(p->how));
    if (!e || json_array_append_new(shared, e) != 0)
      ok = false;
  }
  if (!ok) {
    json_decref(o);
    json_decref(shared);
    return NULL;
  }
  put(o, "asymmetric", json_boolean(al->asymmetric), &ok);
  put(o, "shared", shared, &ok);
  put(o, "forward_only_ttls", int_array(al->forward_only_ttls, al->n_forward_only), &ok);
  put(o, "reverse_only_ttls", int_array(al->reverse_only_ttls, al->n_reverse_only), &ok);
  return done(o, ok);
}

/* One direction of the agent-to-agent stream. */
static json_t *oneway_dir_json(const md_oneway_dir *d) {
  json_t *o = json_object();
  bool ok = o != NULL;
  if (!ok)
    return NULL;
  put(o, "sent", json_integer(d->sent), &ok);
  put(o, "recv", json_integer(d->recv), &ok);
  put(o, "loss_pct", jnum(d->loss_pct), &ok);
  put(o, "delay_avg_ms", jnum(d->delay_avg_ms), &ok);
  put(o, "delay_stdev_ms", jnum(d->delay_stdev_ms), &ok);
  return done(o, ok);
}

/* one_way, or null when there was no stream (B no agent). */
static json_t *oneway_json(const md_report *r) {
  if (!r->has_oneway)
    return json_null();
  json_t *o = json_object();
  bool ok = o != NULL;
  if (!ok)
    return NULL;
  put(o, "forward", oneway_dir_json(&r->oneway_forward), &ok);
  put(o, "reverse", oneway_dir_json(&r->oneway_reverse), &ok);
  return done(o, ok);
}

/* followup: the probes chosen after the traces. */
static json_t *followup_json(const md_report *r) {
  json_t *a = json_array();
  for (int i = 0; a && r->followup && i < r->n_followup; i++) {
    const md_followup *f = &r->followup[i];
    json_t *o = json_object();
    bool ok = o != NULL;
    if (o) {
      put(o, "from", jstr(f->from), &ok);
      put(o, "target", jstr(f->target), &ok);
      put(o, "protocol", jstr(f->protocol), &ok);
      put(o, "sent", json_integer(f->sent), &ok);
      put(o, "recv", json_integer(f->recv), &ok);
      put(o, "loss_pct", jnum(f->loss_pct), &ok);
      put(o, "avg_ms", jnum(f->avg_ms), &ok);
      put(o, "why", jstr(f->why ? f->why : ""), &ok);
    }
    o = done(o, ok);
    if (!o || json_array_append_new(a, o) != 0) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

/* diagnosis.suspect, or null. */
static json_t *suspect_json(const md_diagnosis *d) {
  if (!d->has_suspect)
    return json_null();
  const md_suspect *s = &d->suspect;
  json_t *o = json_object();
  bool ok = o != NULL;
  if (!ok)
    return NULL;
  put(o, "kind", json_string(md_suspect_kind_name(s->kind)), &ok);
  put(o, "path", json_string(md_dir_name(s->path)), &ok);
  put(o, "from_ip", jstr(s->from_ip), &ok);
  put(o, "to_ip", jstr(s->to_ip), &ok);
  put(o, "from_ttl", json_integer(s->from_ttl), &ok);
  put(o, "to_ttl", json_integer(s->to_ttl), &ok);
  put(o, "confidence", jnum(s->confidence), &ok);
  put(o, "evidence", str_array(s->evidence, s->n_evidence), &ok);
  return done(o, ok);
}

/* diagnosis: status, direction, suspect, rate_limited, summary, advice. */
static json_t *diagnosis_json(const md_diagnosis *d) {
  json_t *o = json_object(), *rl = json_array();
  bool ok = o && rl;
  for (int i = 0; ok && d->rate_limited && i < d->n_rate_limited; i++) {
    const md_rate_limited *x = &d->rate_limited[i];
    json_t *e = json_pack("{s:s, s:i, s:o}", "path", md_dir_name(x->path), "ttl", x->ttl, "ip",
                          jstr(x->ip));
    if (!e || json_array_append_new(rl, e) != 0)
      ok = false;
  }
  if (!ok) {
    json_decref(o);
    json_decref(rl);
    return NULL;
  }
  put(o, "status", json_string(md_status_name(d->status)), &ok);
  put(o, "direction", json_string(md_direction_name(d->direction)), &ok);
  put(o, "suspect", suspect_json(d), &ok);
  put(o, "rate_limited", rl, &ok);
  put(o, "summary", jstr(d->summary ? d->summary : ""), &ok);
  put(o, "advice", str_array(d->advice, d->n_advice), &ok);
  return done(o, ok);
}

/* errors: {agent (null: the controller), code, message}. */
static json_t *errors_json(const md_report *r) {
  json_t *a = json_array();
  for (int i = 0; a && r->errors && i < r->n_errors; i++) {
    const md_report_error *e = &r->errors[i];
    json_t *o =
        json_pack("{s:o, s:o, s:o}", "agent", jstr(e->agent), "code", jstr(e->code ? e->code : ""),
                  "message", jstr(e->message ? e->message : ""));
    if (!o || json_array_append_new(a, o) != 0) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

/* The whole report, in the contract's order. */
json_t *md_report_to_json(const md_report *r) {
  if (!r)
    return NULL;
  json_t *o = json_object(), *agents = json_object();
  bool ok = o && agents;
  if (!ok) {
    json_decref(o);
    json_decref(agents);
    return NULL;
  }
  put(agents, "a", agent_json(&r->a), &ok);
  put(agents, "b", agent_json(&r->b), &ok);
  put(o, "schema", json_string(MD_REPORT_SCHEMA), &ok);
  put(o, "id", jstr(r->id), &ok);
  put(o, "started_at", jtime(r->started_at_ns), &ok);
  put(o, "finished_at", jtime(r->finished_at_ns), &ok);
  put(o, "ran_by", jstr(r->ran_by), &ok);
  put(o, "options", options_json(&r->options), &ok);
  put(o, "agents", agents, &ok);
  put(o, "start_skew_ms", r->has_skew ? jnum(r->start_skew_ms) : json_null(), &ok);
  put(o, "forward", path_json(r->forward, &r->forward_verdict), &ok);
  put(o, "reverse", path_json(r->reverse, &r->reverse_verdict), &ok);
  put(o, "alignment", alignment_json(&r->alignment), &ok);
  put(o, "one_way", oneway_json(r), &ok);
  put(o, "followup", followup_json(r), &ok);
  put(o, "diagnosis", diagnosis_json(&r->diagnosis), &ok);
  put(o, "errors", errors_json(r), &ok);
  return done(o, ok);
}

/* The report as text with the report's dump flags. */
char *md_report_to_json_string(const md_report *r, int pretty) {
  json_t *j = md_report_to_json(r);
  if (!j)
    return NULL;
  char *s = json_dumps(j, pretty ? MD_REPORT_JSON_FLAGS : MD_REPORT_JSON_FLAGS_COMPACT);
  json_decref(j);
  return s;
}

/* Indented, with a final newline (what report.json and --format json hold). */
int md_report_write_json(const md_report *r, FILE *out) {
  char *s = md_report_to_json_string(r, 1);
  if (!s)
    return -ENOMEM;
  int rc = (fputs(s, out) < 0 || fputc('\n', out) == EOF) ? -EIO : 0;
  free(s);
  return rc;
}

/* --- Reading ------------------------------------------------------------------ */

/* Where the error text goes. */
typedef struct jerr {
  char *buf;
  size_t len;
} jerr;

static int fail(jerr *e, const char *where, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "where.key: message" into the error buffer; returns -EINVAL. */
static int fail(jerr *e, const char *where, const char *key, const char *fmt, ...) {
  if (e->buf && e->len) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(e->buf, e->len, "%s%s%s: %s", where, (where[0] && key[0]) ? "." : "", key, msg);
  }
  return -EINVAL;
}

/* "out of memory" at a field; returns -ENOMEM. */
static int oom(jerr *e, const char *where, const char *key) {
  fail(e, where, key, "out of memory");
  return -ENOMEM;
}

/* A required member. */
static int get(const json_t *o, const char *where, const char *key, const json_t **v, jerr *e) {
  *v = json_object_get(o, key);
  return *v ? 0 : fail(e, where, key, "missing");
}

/* A copy of a string member (NULL for null when nullable). When optional
 * and missing, *out is NULL. */
static int get_str(const json_t *o, const char *where, const char *key, bool nullable,
                   bool optional, char **out, jerr *e) {
  *out = NULL;
  const json_t *v = json_object_get(o, key);
  if (!v)
    return optional ? 0 : fail(e, where, key, "missing");
  if (nullable && json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return fail(e, where, key, nullable ? "expected a string or null" : "expected a string");
  *out = strdup(json_string_value(v));
  return *out ? 0 : oom(e, where, key);
}

/* A string member into a fixed buffer (at most len - 1 bytes). */
static int get_fixed(const json_t *o, const char *where, const char *key, char *buf, size_t len,
                     jerr *e) {
  const json_t *v;
  if (get(o, where, key, &v, e))
    return -EINVAL;
  if (!json_is_string(v))
    return fail(e, where, key, "expected a string");
  if (json_string_length(v) >= len)
    return fail(e, where, key, "longer than %zu characters", len - 1);
  memcpy(buf, json_string_value(v), json_string_length(v) + 1);
  return 0;
}

/* An integer member in [min, max]; null gives 0 when nullable; missing
 * gives dflt when optional. */
static int get_int(const json_t *o, const char *where, const char *key, json_int_t min,
                   json_int_t max, bool nullable, bool optional, json_int_t dflt, json_int_t *out,
                   jerr *e) {
  const json_t *v = json_object_get(o, key);
  *out = dflt;
  if (!v)
    return optional ? 0 : fail(e, where, key, "missing");
  if (nullable && json_is_null(v)) {
    *out = 0;
    return 0;
  }
  if (!json_is_integer(v))
    return fail(e, where, key, nullable ? "expected an integer or null" : "expected an integer");
  json_int_t n = json_integer_value(v);
  if (n < min || n > max)
    return fail(e, where, key,
                "%" JSON_INTEGER_FORMAT " out of range %" JSON_INTEGER_FORMAT
                "..%" JSON_INTEGER_FORMAT,
                n, min, max);
  *out = n;
  return 0;
}

/* An int-sized integer member (required, not nullable). */
static int get_i(const json_t *o, const char *where, const char *key, int min, int max, int *out,
                 jerr *e) {
  json_int_t n;
  if (get_int(o, where, key, min, max, false, false, 0, &n, e))
    return -EINVAL;
  *out = (int)n;
  return 0;
}

/* A uint32 count member. */
static int get_u32(const json_t *o, const char *where, const char *key, uint32_t *out, jerr *e) {
  json_int_t n;
  if (get_int(o, where, key, 0, UINT32_MAX, false, false, 0, &n, e))
    return -EINVAL;
  *out = (uint32_t)n;
  return 0;
}

/* A finite number member within [min, max]; *isnull set for null when
 * isnull is given (nullable). */
static int get_num(const json_t *o, const char *where, const char *key, double min, double max,
                   bool *isnull, double *out, jerr *e) {
  const json_t *v;
  *out = 0.0;
  if (isnull)
    *isnull = false;
  if (get(o, where, key, &v, e))
    return -EINVAL;
  if (isnull && json_is_null(v)) {
    *isnull = true;
    return 0;
  }
  if (!json_is_number(v))
    return fail(e, where, key, isnull ? "expected a number or null" : "expected a number");
  double d = json_number_value(v);
  if (!isfinite(d) || d < min || d > max)
    return fail(e, where, key, "%g out of range %g..%g", d, min, max);
  *out = d;
  return 0;
}

/* A boolean member; missing gives dflt when optional. */
static int get_bool(const json_t *o, const char *where, const char *key, bool optional, bool dflt,
                    bool *out, jerr *e) {
  const json_t *v = json_object_get(o, key);
  *out = dflt;
  if (!v)
    return optional ? 0 : fail(e, where, key, "missing");
  if (!json_is_boolean(v))
    return fail(e, where, key, "expected true or false");
  *out = json_is_true(v);
  return 0;
}

/* An array member with at most MAX_LIST entries. */
static int get_array(const json_t *o, const char *where, const char *key, const json_t **out,
                     jerr *e) {
  if (get(o, where, key, out, e))
    return -EINVAL;
  if (!json_is_array(*out))
    return fail(e, where, key, "expected an array");
  if (json_array_size(*out) > MAX_LIST)
    return fail(e, where, key, "more than %d entries", MAX_LIST);
  return 0;
}

/* An object member (NULL for null when nullable). */
static int get_object(const json_t *o, const char *where, const char *key, bool nullable,
                      const json_t **out, jerr *e) {
  if (get(o, where, key, out, e))
    return -EINVAL;
  if (nullable && json_is_null(*out)) {
    *out = NULL;
    return 0;
  }
  if (!json_is_object(*out))
    return fail(e, where, key, nullable ? "expected an object or null" : "expected an object");
  return 0;
}

/* A member naming an enum value: *out is the value whose name(v) matches. */
static int get_enum(const json_t *o, const char *where, const char *key, const char *(*name)(int),
                    int n, int *out, jerr *e) {
  const json_t *v;
  if (get(o, where, key, &v, e))
    return -EINVAL;
  char all[160] = "";
  for (int i = 0; i < n; i++) {
    if (json_is_string(v) && strcmp(json_string_value(v), name(i)) == 0) {
      *out = i;
      return 0;
    }
    size_t l = strlen(all);
    snprintf(all + l, sizeof all - l, "%s%s", i ? "|" : "", name(i));
  }
  return fail(e, where, key, "expected one of %s", all);
}

/* Adapters: the name functions take their own enum types. */
static const char *seg_name(int v) {
  return md_segment_name((md_segment)v);
}
static const char *status_name(int v) {
  return md_status_name((md_status)v);
}
static const char *direction_name(int v) {
  return md_direction_name((md_direction)v);
}
static const char *dir_name(int v) {
  return md_dir_name((md_dir)v);
}
static const char *kind_name(int v) {
  return md_suspect_kind_name((md_suspect_kind)v);
}

/* A time member: RFC 3339 or null (0). */
static int get_time(const json_t *o, const char *where, const char *key, int64_t *out, jerr *e) {
  const json_t *v;
  *out = 0;
  if (get(o, where, key, &v, e))
    return -EINVAL;
  if (json_is_null(v))
    return 0;
  if (!json_is_string(v) || md_time_parse_rfc3339(json_string_value(v), out) != 0)
    return fail(e, where, key, "expected an RFC 3339 time or null");
  return 0;
}

/* An array member and a zeroed C array of as many entries of size bytes
 * (NULL for an empty array), which the list readers below fill. */
static int get_list(const json_t *o, const char *where, const char *key, size_t size,
                    const json_t **a, void **out, jerr *e) {
  *out = NULL;
  if (get_array(o, where, key, a, e))
    return -EINVAL;
  size_t len = json_array_size(*a);
  if (len == 0)
    return 0;
  *out = calloc(len, size);
  return *out ? 0 : oom(e, where, key);
}

/* An array member of TTLs (1..255) into a new int array. */
static int get_ttls(const json_t *o, const char *where, const char *key, int **out, int *n,
                    jerr *e) {
  const json_t *a;
  void *mem;
  *out = NULL;
  *n = 0;
  int rc = get_list(o, where, key, sizeof **out, &a, &mem, e);
  if (rc || !mem)
    return rc;
  int *v = mem;
  size_t len = json_array_size(a);
  for (size_t i = 0; i < len; i++) {
    const json_t *x = json_array_get(a, i);
    if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > MD_MAX_TTL) {
      free(v);
      return fail(e, where, key, "[%zu]: expected a TTL (1..%d)", i, MD_MAX_TTL);
    }
    v[i] = (int)json_integer_value(x);
  }
  *out = v;
  *n = (int)len;
  return 0;
}

/* An array member of strings into a new string vector. */
static int get_strv(const json_t *o, const char *where, const char *key, char ***out, int *n,
                    jerr *e) {
  const json_t *a;
  void *mem;
  *out = NULL;
  *n = 0;
  int rc = get_list(o, where, key, sizeof **out, &a, &mem, e);
  if (rc || !mem)
    return rc;
  char **v = mem;
  *out = v; /* the caller's report frees what is there on failure */
  size_t len = json_array_size(a);
  for (size_t i = 0; i < len; i++) {
    const json_t *x = json_array_get(a, i);
    if (!json_is_string(x))
      return fail(e, where, key, "[%zu]: expected a string", i);
    v[i] = strdup(json_string_value(x));
    if (!v[i])
      return oom(e, where, key);
    *n = (int)i + 1;
  }
  return 0;
}

/* Reads one object of a list into elem; w names its place. */
typedef int (*elem_reader)(const json_t *x, const char *w, void *elem, jerr *e);

/* An array member of objects into a new array of entries of size bytes,
 * each read by fn and named "where.key[i]" in errors. *n counts the
 * entries begun, so that the caller's report frees what they hold when one
 * fails. */
static int get_objects(const json_t *o, const char *where, const char *key, size_t size,
                       elem_reader fn, void **out, int *n, jerr *e) {
  const json_t *a;
  int rc = get_list(o, where, key, size, &a, out, e);
  if (rc || !*out)
    return rc;
  size_t len = json_array_size(a);
  for (size_t i = 0; i < len; i++) {
    char w[64];
    snprintf(w, sizeof w, "%s%s%s[%zu]", where, where[0] ? "." : "", key, i);
    const json_t *x = json_array_get(a, i);
    *n = (int)i + 1;
    if (!json_is_object(x))
      return fail(e, w, "", "expected an object");
    if (fn(x, w, (char *)*out + i * size, e))
      return -EINVAL;
  }
  return 0;
}

/* "where.key" (or "where[i]") into buf for nested fields. */
static const char *at(char *buf, size_t len, const char *where, const char *key) {
  snprintf(buf, len, "%s%s%s", where, (where[0] && key[0] != '[') ? "." : "", key);
  return buf;
}

/* options: the contract's five required, the additions optional. */
static int options_from(const json_t *o, md_report_options *op, jerr *e) {
  const char *w = "options";
  json_int_t n;
  bool b;
  if (get_fixed(o, w, "protocol", op->protocol, sizeof op->protocol, e))
    return -EINVAL;
  if (op->protocol[0] && strcmp(op->protocol, "icmp") && strcmp(op->protocol, "udp") &&
      strcmp(op->protocol, "tcp")) /* "": not set yet (a report stored as it began) */
    return fail(e, w, "protocol", "expected one of icmp|udp|tcp");
  if (get_i(o, w, "cycles", 0, INT32_MAX, &op->cycles, e) ||
      get_i(o, w, "interval_ms", 0, INT32_MAX, &op->interval_ms, e) ||
      get_i(o, w, "psize", 0, 65535, &op->psize, e) ||
      get_i(o, w, "max_ttl", 0, MD_MAX_TTL, &op->max_ttl, e))
    return -EINVAL;
  if (get_int(o, w, "first_ttl", 0, MD_MAX_TTL, false, true, 1, &n, e))
    return -EINVAL;
  op->first_ttl = (int)n;
  if (get_int(o, w, "port", 0, 65535, false, true, 0, &n, e))
    return -EINVAL;
  op->port = (int)n;
  if (get_int(o, w, "tos", 0, 255, false, true, 0, &n, e))
    return -EINVAL;
  op->tos = (int)n;
  if (get_bool(o, w, "no_dns", true, false, &b, e))
    return -EINVAL;
  op->no_dns = b;
  if (get_int(o, w, "family", 0, 6, false, true, 0, &n, e))
    return -EINVAL;
  if (n != 0 && n != 4 && n != 6)
    return fail(e, w, "family", "expected 0, 4 or 6");
  op->family = (int)n;
  return 0;
}

/* One AGENT. is_agent defaults to true for A, and for B to "has an address". */
static int agent_from(const json_t *o, const char *w, bool is_b, md_report_agent *a, jerr *e) {
  bool isnull;
  if (get_str(o, w, "name", true, false, &a->name, e) ||
      get_str(o, w, "address", true, false, &a->address, e) ||
      get_str(o, w, "probe_address", true, false, &a->probe_address, e) ||
      get_str(o, w, "hostname", true, false, &a->hostname, e) ||
      get_str(o, w, "version", true, false, &a->version, e) ||
      get_num(o, w, "clock_offset_ms", -1e12, 1e12, &isnull, &a->clock_offset_ms, e) ||
      get_bool(o, w, "is_agent", true, !is_b || a->address != NULL, &a->present, e))
    return -EINVAL;
  return 0;
}

/* A PATH.verdict object into v. */
static int verdict_from(const json_t *o, const char *w, md_path_verdict *v, jerr *e) {
  json_int_t n;
  int seg = 0;
  if (get_num(o, w, "destination_loss_pct", 0, 100, NULL, &v->destination_loss_pct, e))
    return -EINVAL;
  if (get_int(o, w, "first_loss_ttl", 1, MD_MAX_TTL, true, false, 0, &n, e))
    return -EINVAL;
  v->first_loss_ttl = (int)n;
  if (get_str(o, w, "first_loss_ip", true, false, &v->first_loss_ip, e) ||
      get_enum(o, w, "segment", seg_name, MD_SEG_DESTINATION_ISP + 1, &seg, e) ||
      get_ttls(o, w, "rate_limited_ttls", &v->rate_limited_ttls, &v->n_rate_limited, e))
    return -EINVAL;
  v->segment = (md_segment)seg;
  if (get_int(o, w, "latency_jump_ttl", 1, MD_MAX_TTL, true, false, 0, &n, e))
    return -EINVAL;
  v->latency_jump_ttl = (int)n;
  if (get_str(o, w, "text", true, false, &v->text, e))
    return -EINVAL;
  v->present = true;
  return 0;
}

/* forward or reverse: a PATH (with its verdict) or null. */
static int path_from(const json_t *o, const char *key, md_path **p, md_path_verdict *v, jerr *e) {
  const json_t *pj;
  if (get_object(o, "", key, true, &pj, e))
    return -EINVAL;
  if (!pj)
    return 0;
  char msg[256];
  *p = md_path_from_json(pj, msg, sizeof msg);
  if (!*p) {
    if (e->buf && e->len)
      snprintf(e->buf, e->len, "%s.%s", key, msg[0] ? msg : "not a PATH");
    return -EINVAL;
  }
  const json_t *vj = json_object_get(pj, "verdict");
  if (!vj || json_is_null(vj))
    return 0;
  char w[32];
  snprintf(w, sizeof w, "%s.verdict", key);
  if (!json_is_object(vj))
    return fail(e, w, "", "expected an object or null");
  return verdict_from(vj, w, v, e);
}

/* One alignment.shared[] pair. */
static int pair_from(const json_t *x, const char *w, void *elem, jerr *e) {
  md_align_pair *p = elem;
  if (get_i(x, w, "forward_ttl", 1, MD_MAX_TTL, &p->forward_ttl, e) ||
      get_i(x, w, "reverse_ttl", 1, MD_MAX_TTL, &p->reverse_ttl, e) ||
      get_fixed(x, w, "how", p->how, sizeof p->how, e))
    return -EINVAL;
  return 0;
}

/* alignment (null is taken as empty). */
static int alignment_from(const json_t *o, md_alignment *al, jerr *e) {
  const json_t *aj;
  const char *w = "alignment";
  void *shared = NULL;
  if (get_object(o, "", w, true, &aj, e))
    return -EINVAL;
  if (!aj)
    return 0;
  if (get_bool(aj, w, "asymmetric", false, false, &al->asymmetric, e))
    return -EINVAL;
  int rc = get_objects(aj, w, "shared", sizeof *al->shared, pair_from, &shared, &al->n_shared, e);
  al->shared = shared;
  if (rc)
    return rc;
  if (get_ttls(aj, w, "forward_only_ttls", &al->forward_only_ttls, &al->n_forward_only, e) ||
      get_ttls(aj, w, "reverse_only_ttls", &al->reverse_only_ttls, &al->n_reverse_only, e))
    return -EINVAL;
  return 0;
}

/* One direction of one_way. */
static int oneway_dir_from(const json_t *o, const char *key, md_oneway_dir *d, jerr *e) {
  const json_t *x;
  char w[32];
  snprintf(w, sizeof w, "one_way.%s", key);
  if (get_object(o, "one_way", key, false, &x, e))
    return -EINVAL;
  if (get_u32(x, w, "sent", &d->sent, e) || get_u32(x, w, "recv", &d->recv, e) ||
      get_num(x, w, "loss_pct", 0, 100, NULL, &d->loss_pct, e) ||
      get_num(x, w, "delay_avg_ms", -1e12, 1e12, NULL, &d->delay_avg_ms, e) ||
      get_num(x, w, "delay_stdev_ms", 0, 1e12, NULL, &d->delay_stdev_ms, e))
    return -EINVAL;
  return 0;
}

/* One followup[] entry. */
static int followup_entry(const json_t *x, const char *w, void *elem, jerr *e) {
  md_followup *f = elem;
  if (get_str(x, w, "from", true, false, &f->from, e) ||
      get_str(x, w, "target", true, false, &f->target, e) ||
      get_fixed(x, w, "protocol", f->protocol, sizeof f->protocol, e) ||
      get_u32(x, w, "sent", &f->sent, e) || get_u32(x, w, "recv", &f->recv, e) ||
      get_num(x, w, "loss_pct", 0, 100, NULL, &f->loss_pct, e) ||
      get_num(x, w, "avg_ms", 0, 1e12, NULL, &f->avg_ms, e) ||
      get_str(x, w, "why", true, false, &f->why, e))
    return -EINVAL;
  return 0;
}

/* followup[]. */
static int followup_from(const json_t *o, md_report *r, jerr *e) {
  void *v = NULL;
  int rc =
      get_objects(o, "", "followup", sizeof *r->followup, followup_entry, &v, &r->n_followup, e);
  r->followup = v;
  return rc;
}

/* diagnosis.suspect (an object; null handled by the caller). */
static int suspect_from(const json_t *x, md_suspect *s, jerr *e) {
  const char *w = "diagnosis.suspect";
  int kind = 0, path = 0;
  if (get_enum(x, w, "kind", kind_name, MD_SUSPECT_UNREACHABLE + 1, &kind, e) ||
      get_enum(x, w, "path", dir_name, MD_DIR_REVERSE + 1, &path, e))
    return -EINVAL;
  s->kind = (md_suspect_kind)kind;
  s->path = (md_dir)path;
  if (get_str(x, w, "from_ip", true, false, &s->from_ip, e) ||
      get_str(x, w, "to_ip", true, false, &s->to_ip, e) ||
      get_i(x, w, "from_ttl", 0, MD_MAX_TTL, &s->from_ttl, e) ||
      get_i(x, w, "to_ttl", 0, MD_MAX_TTL, &s->to_ttl, e) ||
      get_num(x, w, "confidence", 0, 1, NULL, &s->confidence, e) ||
      get_strv(x, w, "evidence", &s->evidence, &s->n_evidence, e))
    return -EINVAL;
  return 0;
}

/* One diagnosis.rate_limited[] hop. */
static int rate_limited_from(const json_t *x, const char *w, void *elem, jerr *e) {
  md_rate_limited *m = elem;
  int path = 0;
  if (get_enum(x, w, "path", dir_name, MD_DIR_REVERSE + 1, &path, e) ||
      get_i(x, w, "ttl", 1, MD_MAX_TTL, &m->ttl, e) || get_str(x, w, "ip", true, false, &m->ip, e))
    return -EINVAL;
  m->path = (md_dir)path;
  return 0;
}

/* diagnosis. */
static int diagnosis_from(const json_t *o, md_diagnosis *d, jerr *e) {
  const json_t *x, *sj;
  const char *w = "diagnosis";
  int status = 0, direction = 0;
  if (get_object(o, "", w, false, &x, e) ||
      get_enum(x, w, "status", status_name, MD_STATUS_INCOMPLETE + 1, &status, e) ||
      get_enum(x, w, "direction", direction_name, MD_DIRECTION_BOTH + 1, &direction, e))
    return -EINVAL;
  d->status = (md_status)status;
  d->direction = (md_direction)direction;
  if (get_object(x, w, "suspect", true, &sj, e))
    return -EINVAL;
  if (sj) {
    d->has_suspect = true;
    if (suspect_from(sj, &d->suspect, e))
      return -EINVAL;
  }
  void *rl = NULL;
  int rc = get_objects(x, w, "rate_limited", sizeof *d->rate_limited, rate_limited_from, &rl,
                       &d->n_rate_limited, e);
  d->rate_limited = rl;
  if (rc)
    return rc;
  if (get_str(x, w, "summary", true, false, &d->summary, e) ||
      get_strv(x, w, "advice", &d->advice, &d->n_advice, e))
    return -EINVAL;
  return 0;
}

/* One errors[] entry. */
static int error_entry(const json_t *x, const char *w, void *elem, jerr *e) {
  md_report_error *m = elem;
  if (get_str(x, w, "agent", true, false, &m->agent, e) ||
      get_str(x, w, "code", false, false, &m->code, e) ||
      get_str(x, w, "message", false, false, &m->message, e))
    return -EINVAL;
  return 0;
}

/* errors[]. */
static int errors_from(const json_t *o, md_report *r, jerr *e) {
  void *v = NULL;
  int rc = get_objects(o, "", "errors", sizeof *r->errors, error_entry, &v, &r->n_errors, e);
  r->errors = v;
  return rc;
}

/* An id as md_report_new_id makes them, or as another tool might: 1..39
 * characters of [A-Za-z0-9._:-]. */
static bool id_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= sizeof(((md_report *)0)->id))
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == ':' || c == '-'))
      return false;
  }
  return true;
}

/* All the top-level members, in the contract's order. */
static int report_from(const json_t *j, md_report *r, jerr *e) {
  const json_t *v, *agents, *aj;
  bool isnull;
  char w[64];
  if (!json_is_object(j))
    return fail(e, "report", "", "expected a JSON object");
  if (get(j, "", "schema", &v, e))
    return -EINVAL;
  if (!json_is_string(v) || strcmp(json_string_value(v), MD_REPORT_SCHEMA) != 0)
    return fail(e, "", "schema", "expected \"%s\"", MD_REPORT_SCHEMA);
  if (get(j, "", "id", &v, e))
    return -EINVAL;
  if (!json_is_string(v) || !id_ok(json_string_value(v)))
    return fail(e, "", "id", "expected 1..%zu characters of A-Z a-z 0-9 . _ : -", sizeof r->id - 1);
  snprintf(r->id, sizeof r->id, "%s", json_string_value(v));
  if (get_time(j, "", "started_at", &r->started_at_ns, e) ||
      get_time(j, "", "finished_at", &r->finished_at_ns, e) ||
      get_str(j, "", "ran_by", true, true, &r->ran_by, e))
    return -EINVAL;
  if (get_object(j, "", "options", false, &v, e) || options_from(v, &r->options, e))
    return -EINVAL;
  if (get_object(j, "", "agents", false, &agents, e) ||
      get_object(agents, "agents", "a", false, &aj, e) ||
      agent_from(aj, at(w, sizeof w, "agents", "a"), false, &r->a, e) ||
      get_object(agents, "agents", "b", false, &aj, e) ||
      agent_from(aj, at(w, sizeof w, "agents", "b"), true, &r->b, e))
    return -EINVAL;
  if (get_num(j, "", "start_skew_ms", 0, 1e12, &isnull, &r->start_skew_ms, e))
    return -EINVAL;
  r->has_skew = !isnull;
  if (path_from(j, "forward", &r->forward, &r->forward_verdict, e) ||
      path_from(j, "reverse", &r->reverse, &r->reverse_verdict, e) ||
      alignment_from(j, &r->alignment, e))
    return -EINVAL;
  if (get_object(j, "", "one_way", true, &v, e))
    return -EINVAL;
  if (v) {
    r->has_oneway = true;
    if (oneway_dir_from(v, "forward", &r->oneway_forward, e) ||
        oneway_dir_from(v, "reverse", &r->oneway_reverse, e))
      return -EINVAL;
  }
  if (followup_from(j, r, e) || diagnosis_from(j, &r->diagnosis, e) || errors_from(j, r, e))
    return -EINVAL;
  return 0;
}

/* A stored report into a new md_report. */
md_report *md_report_from_json(const json_t *j, char *err, size_t errlen) {
  jerr e = {err, errlen};
  if (err && errlen)
    err[0] = '\0';
  md_report *r = md_report_new();
  if (!r) {
    fail(&e, "report", "", "out of memory");
    return NULL;
  }
  if (report_from(j, r, &e) != 0) {
    md_report_free(r);
    return NULL;
  }
  return r;
}

/* Parse text, then read it as a report; parse errors give line:column. */
md_report *md_report_from_json_string(const char *text, size_t len, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!text) {
    if (err && errlen)
      snprintf(err, errlen, "no input");
    return NULL;
  }
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    if (err && errlen)
      snprintf(err, errlen, "line %d, column %d: %s", je.line, je.column, je.text);
    return NULL;
  }
  md_report *r = md_report_from_json(j, err, errlen);
  json_decref(j);
  return r;
}

/* Read a whole file (at most MAX_FILE bytes) and parse it as a report. */
md_report *md_report_load_json_file(const char *path, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (err && errlen)
      snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      size_t ncap = cap ? cap * 2 : 65536;
      char *nb = ncap <= (size_t)MAX_FILE + 1 ? realloc(buf, ncap) : NULL;
      if (!nb) {
        if (err && errlen)
          snprintf(err, errlen, "%s: %s", path,
                   ncap > (size_t)MAX_FILE + 1 ? "too large for a report" : "out of memory");
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = nb;
      cap = ncap;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0)
      break;
  }
  int rerr = ferror(f) ? errno : 0;
  fclose(f);
  if (rerr || len > (size_t)MAX_FILE) {
    if (err && errlen)
      snprintf(err, errlen, "%s: %s", path, rerr ? strerror(rerr) : "too large for a report");
    free(buf);
    return NULL;
  }
  char msg[384];
  md_report *r = md_report_from_json_string(buf, len, msg, sizeof msg);
  free(buf);
  if (!r && err && errlen)
    snprintf(err, errlen, "%s: %s", path, msg);
  return r;
}
