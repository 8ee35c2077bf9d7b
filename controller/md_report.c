/* md_report: allocation and release of the report model, its ids, its
 * error list, and the names the JSON and the renderers use for its enums. */
#include "md_report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "md_time.h"

/* A new, empty report. The diagnosis starts "incomplete" until the
 * orchestration fills it, so that a report stored or printed early never
 * claims a healthy path. NULL on OOM. */
md_report *md_report_new(void) {
  md_report *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->diagnosis.status = MD_STATUS_INCOMPLETE;
  r->diagnosis.direction = MD_DIRECTION_NONE;
  return r;
}

/* The strings of one agent. */
static void agent_clear(md_report_agent *a) {
  free(a->name);
  free(a->address);
  free(a->probe_address);
  free(a->hostname);
  free(a->version);
}

/* What one path verdict owns. */
static void verdict_clear(md_path_verdict *v) {
  free(v->first_loss_ip);
  free(v->rate_limited_ttls);
  free(v->text);
}

/* A list of n malloc'd strings and the list. */
static void strv_free(char **v, int n) {
  for (int i = 0; v && i < n; i++)
    free(v[i]);
  free(v);
}

/* Everything the report owns, then the report. NULL is fine. */
void md_report_free(md_report *r) {
  if (!r)
    return;
  free(r->ran_by);
  agent_clear(&r->a);
  agent_clear(&r->b);
  md_path_free(r->forward);
  md_path_free(r->reverse);
  verdict_clear(&r->forward_verdict);
  verdict_clear(&r->reverse_verdict);
  free(r->alignment.shared);
  free(r->alignment.forward_only_ttls);
  free(r->alignment.reverse_only_ttls);
  for (int i = 0; r->followup && i < r->n_followup; i++) {
    free(r->followup[i].from);
    free(r->followup[i].target);
    free(r->followup[i].why);
  }
  free(r->followup);
  md_diagnosis *d = &r->diagnosis;
  free(d->suspect.from_ip);
  free(d->suspect.to_ip);
  strv_free(d->suspect.evidence, d->suspect.n_evidence);
  for (int i = 0; d->rate_limited && i < d->n_rate_limited; i++)
    free(d->rate_limited[i].ip);
  free(d->rate_limited);
  free(d->summary);
  strv_free(d->advice, d->n_advice);
  for (int i = 0; r->errors && i < r->n_errors; i++) {
    free(r->errors[i].agent);
    free(r->errors[i].code);
    free(r->errors[i].message);
  }
  free(r->errors);
  free(r);
}

/* "YYYYMMDDTHHMMSSZ-xxxxxx": the start time (now when unset) in UTC, so ids
 * sort by time, and 24 random bits so two runs in one second differ. */
void md_report_new_id(md_report *r) {
  if (!r)
    return;
  int64_t ns = r->started_at_ns ? r->started_at_ns : md_now_real_ns();
  time_t sec = (time_t)(ns / 1000000000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  unsigned char rnd[3];
  if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
    /* no entropy yet (early boot): the clock's nanoseconds will do */
    uint32_t x = (uint32_t)(md_now_mono_ns() ^ ns);
    rnd[0] = (unsigned char)x;
    rnd[1] = (unsigned char)(x >> 8);
    rnd[2] = (unsigned char)(x >> 16);
  }
  snprintf(r->id, sizeof r->id, "%04d%02d%02dT%02d%02d%02dZ-%02x%02x%02x", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rnd[0], rnd[1], rnd[2]);
}

/* Append {agent, code, message}; agent may be NULL (the controller). */
int md_report_add_error(md_report *r, const char *agent, const char *code, const char *fmt, ...) {
  if (!r || !code || !fmt)
    return -EINVAL;
  char *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&msg, fmt, ap);
  va_end(ap);
  if (n < 0)
    return -ENOMEM;
  char *a = agent ? strdup(agent) : NULL;
  char *c = strdup(code);
  md_report_error *e = realloc(r->errors, (size_t)(r->n_errors + 1) * sizeof *e);
  if ((agent && !a) || !c || !e) {
    free(a);
    free(c);
    free(msg);
    if (e)
      r->errors = e;
    return -ENOMEM;
  }
  r->errors = e;
  e[r->n_errors].agent = a;
  e[r->n_errors].code = c;
  e[r->n_errors].message = msg;
  r->n_errors++;
  return 0;
}

/* The JSON names of the enums ("?" for a value out of range). */
const char *md_segment_name(md_segment s) {
  switch (s) {
  case MD_SEG_NONE:
    return "none";
  case MD_SEG_DESTINATION_HOST:
    return "destination_host";
  case MD_SEG_LOCAL_ISP:
    return "local_isp";
  case MD_SEG_TRANSIT:
    return "transit";
  case MD_SEG_DESTINATION_ISP:
    return "destination_isp";
  }
  return "?";
}

/* "healthy|degraded|unreachable|incomplete". */
const char *md_status_name(md_status s) {
  switch (s) {
  case MD_STATUS_HEALTHY:
    return "healthy";
  case MD_STATUS_DEGRADED:
    return "degraded";
  case MD_STATUS_UNREACHABLE:
    return "unreachable";
  case MD_STATUS_INCOMPLETE:
    return "incomplete";
  }
  return "?";
}

/* "none|forward|reverse|both". */
const char *md_direction_name(md_direction d) {
  switch (d) {
  case MD_DIRECTION_NONE:
    return "none";
  case MD_DIRECTION_FORWARD:
    return "forward";
  case MD_DIRECTION_REVERSE:
    return "reverse";
  case MD_DIRECTION_BOTH:
    return "both";
  }
  return "?";
}

/* "forward|reverse". */
const char *md_dir_name(md_dir d) {
  switch (d) {
  case MD_DIR_FORWARD:
    return "forward";
  case MD_DIR_REVERSE:
    return "reverse";
  }
  return "?";
}

/* "loss|latency|destination_host|unreachable". */
const char *md_suspect_kind_name(md_suspect_kind k) {
  switch (k) {
  case MD_SUSPECT_LOSS:
    return "loss";
  case MD_SUSPECT_LATENCY:
    return "latency";
  case MD_SUSPECT_DESTINATION_HOST:
    return "destination_host";
  case MD_SUSPECT_UNREACHABLE:
    return "unreachable";
  }
  return "?";
}
