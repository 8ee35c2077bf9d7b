/* render_common: the parts of a report that the markdown and HTML
 * renderers write alike (render_common.h). Each takes the format's
 * md__markup: its escape function and the strings of its tables, so the
 * two stay word for word the same where they say the same thing. */
#include "render_common.h"

#include "md_time.h"
#include "render.h"

/* A realtime ns as RFC 3339, or "-". */
const char *md__when(int64_t ns, char *buf, size_t len) {
  if (!ns) {
    snprintf(buf, len, "-");
    return buf;
  }
  return md_time_rfc3339(ns, buf, len);
}

/* "local → cvm", escaped. */
void md__dir_title(FILE *out, const md__markup *m, const md_report *r, md_dir d) {
  m->esc(out, md_report_agent_label(d == MD_DIR_FORWARD ? &r->a : &r->b, d ? "B" : "A"));
  fputs(" → ", out);
  m->esc(out, md_report_agent_label(d == MD_DIR_FORWARD ? &r->b : &r->a, d ? "A" : "B"));
}

/* The faulty direction's title in brackets, when there is one. */
void md__fault_dir(FILE *out, const md__markup *m, const md_report *r) {
  md_direction dir = r->diagnosis.direction;
  if (dir != MD_DIRECTION_FORWARD && dir != MD_DIRECTION_REVERSE)
    return;
  fputs(" (", out);
  md__dir_title(out, m, r, dir == MD_DIRECTION_FORWARD ? MD_DIR_FORWARD : MD_DIR_REVERSE);
  fputc(')', out);
}

/* "Forward path: local → cvm (target)". */
void md__path_title(FILE *out, const md__markup *m, const md_report *r, md_dir d) {
  const md_path *p = d == MD_DIR_FORWARD ? r->forward : r->reverse;
  fprintf(out, "%s path: ", d == MD_DIR_FORWARD ? "Forward" : "Reverse");
  md__dir_title(out, m, r, d);
  if (p && p->target) {
    fputs(" (", out);
    m->esc(out, p->target);
    fputc(')', out);
  }
}

/* The start of a header row: its name in the name cell. */
static void head(FILE *out, const md__markup *m, const char *name) {
  fputs(m->head_open, out);
  fputs(name, out);
  fputs(m->head_close, out);
}

/* An agent's header row: name, address, host, version, clock offset. */
static void agent_row(FILE *out, const md__markup *m, const char *tag, const md_report_agent *a) {
  head(out, m, tag);
  fputs(m->strong_open, out);
  m->esc(out, md_report_agent_label(a, tag));
  fputs(m->strong_close, out);
  if (!a->present) {
    fputs(" — no agent (plain address", out);
    if (a->probe_address) {
      fputc(' ', out);
      m->esc(out, a->probe_address);
    }
    fputs("): forward path only", out);
    fputs(m->row_close, out);
    return;
  }
  if (a->address) {
    fputs(" — ", out);
    m->esc(out, a->address);
  }
  if (a->hostname) {
    fputs(", host ", out);
    m->esc(out, a->hostname);
  }
  if (a->version) {
    fputs(", mtr-agent ", out);
    m->esc(out, a->version);
  }
  if (a->version)
    fprintf(out, ", clock %+.1f ms", a->clock_offset_ms);
  fputs(m->row_close, out);
}

/* The header rows, from the report id to the start skew. */
void md__header_rows(FILE *out, const md__markup *m, const md_report *r) {
  char b[64];
  head(out, m, "Report");
  fputs(m->code_open, out);
  m->esc(out, r->id[0] ? r->id : "(no id)");
  fputs(m->code_close, out);
  fputs(m->row_close, out);
  head(out, m, "Started");
  fputs(md__when(r->started_at_ns, b, sizeof b), out);
  fputs(m->row_close, out);
  head(out, m, "Finished");
  fputs(md__when(r->finished_at_ns, b, sizeof b), out);
  fputs(m->row_close, out);
  if (r->ran_by) {
    head(out, m, "Ran by");
    m->esc(out, r->ran_by);
    fputs(m->row_close, out);
  }
  agent_row(out, m, "A", &r->a);
  agent_row(out, m, "B", &r->b);
  const md_report_options *o = &r->options;
  head(out, m, "Options");
  m->esc(out, o->protocol[0] ? o->protocol : "icmp");
  fprintf(out, ", %d cycles, interval %.3g s, %d bytes, TTL %d..%d", o->cycles,
          o->interval_ms / 1000.0, o->psize, o->first_ttl > 0 ? o->first_ttl : 1, o->max_ttl);
  if (o->port)
    fprintf(out, ", port %d", o->port);
  if (o->no_dns)
    fputs(", no DNS", out);
  if (o->family)
    fprintf(out, ", IPv%d", o->family);
  fputs(m->row_close, out);
  if (r->has_skew) {
    head(out, m, "Start skew");
    fprintf(out, "%.1f ms", r->start_skew_ms);
    fputs(m->row_close, out);
  }
}

/* The suspect's end of a link: "A (source)" for TTL 0, else "IP (TTL n)". */
static void link_end(FILE *out, const md__markup *m, const md_report *r, md_dir d, int ttl,
                     const char *ip) {
  if (ttl == 0) {
    m->esc(out, md_report_agent_label(d == MD_DIR_FORWARD ? &r->a : &r->b, d ? "B" : "A"));
    fputs(" (source)", out);
  } else if (ip) {
    m->esc(out, ip);
    fprintf(out, " (TTL %d)", ttl);
  } else {
    fprintf(out, "TTL %d", ttl);
  }
}

/* Both ends of the suspect link and the confidence. */
void md__suspect_link(FILE *out, const md__markup *m, const md_report *r, const md_suspect *s) {
  link_end(out, m, r, s->path, s->from_ttl, s->from_ip);
  fputs(" → ", out);
  link_end(out, m, r, s->path, s->to_ttl, s->to_ip);
  fprintf(out, ", confidence %.0f%%", s->confidence * 100.0);
}

/* The rate-limited hops, comma-separated. */
void md__rate_limited(FILE *out, const md__markup *m, const md_diagnosis *d) {
  for (int i = 0; d->rate_limited && i < d->n_rate_limited; i++) {
    const md_rate_limited *x = &d->rate_limited[i];
    fprintf(out, "%s%s TTL %d ", i ? ", " : "", md_dir_name(x->path), x->ttl);
    m->esc(out, x->ip);
  }
}

/* The verdict's figures in brackets. */
void md__verdict_figures(FILE *out, const md_path_verdict *v) {
  fprintf(out, "(destination loss %.1f%%, segment %s", v->destination_loss_pct,
          md_segment_name(v->segment));
  if (v->first_loss_ttl > 0)
    fprintf(out, ", loss from TTL %d", v->first_loss_ttl);
  if (v->latency_jump_ttl > 0)
    fprintf(out, ", latency jump at TTL %d", v->latency_jump_ttl);
  fputc(')', out);
}

/* A list's items, each escaped between open and close. */
void md__items(FILE *out, const md__markup *m, char *const *items, int n, const char *open,
               const char *close) {
  for (int i = 0; items && i < n; i++) {
    fputs(open, out);
    m->esc(out, items[i]);
    fputs(close, out);
  }
}

/* Cells of a row, escaped, with the format's separator between them. */
void md__cells(FILE *out, const md__markup *m, const char *const *cells, int n) {
  for (int i = 0; i < n; i++) {
    if (i)
      fputs(m->cell_sep, out);
    m->esc(out, cells[i]);
  }
}

/* One row per error. */
void md__error_rows(FILE *out, const md__markup *m, const md_report *r) {
  for (int i = 0; r->errors && i < r->n_errors; i++) {
    const md_report_error *e = &r->errors[i];
    const char *cells[] = {e->agent ? e->agent : "controller", e->code, e->message};
    fputs(m->row_open, out);
    md__cells(out, m, cells, 3);
    fputs(m->row_close, out);
  }
}
