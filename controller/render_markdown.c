/* render_markdown: the report for a ticket (GitHub, GitLab, Jira with a
 * markdown editor). A heading with the status and the faulty direction, the
 * summary as a quote, a table of who/when/what, the diagnosis with its
 * evidence and advice, each direction as a fenced mtr --report (what
 * support desks ask for) with its verdict, the alignment as a table, then
 * the one-way stream, the follow-up probes and the errors.
 *
 * Every string from the report goes through esc(): the markdown characters
 * that can start markup anywhere in a line (\ ` * _ [ ] < | ~ & $) are
 * backslash-escaped, so a hostname "<script>" stays text and cannot open a
 * link, an HTML tag, a table cell or an entity; line breaks and control
 * characters become spaces. Text is only ever written after a prefix of
 * ours, so line-start markup (#, >, 1.) cannot occur. The fenced blocks use a fence longer
 * than any run of backticks inside them.
 */
#include "render.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "md_time.h"

/* s as markdown text: punctuation escaped, no line breaks or controls. */
static void esc(FILE *out, const char *s) {
  if (!s)
    return;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 0x20 || *p == 0x7f)
      fputc(' ', out);
    else if (strchr("\\`*_[]<|~&$", *p))
      fprintf(out, "\\%c", *p);
    else
      fputc(*p, out);
  }
}

/* A realtime ns as RFC 3339, or "-". */
static const char *when(int64_t ns, char *buf, size_t len) {
  if (!ns) {
    snprintf(buf, len, "-");
    return buf;
  }
  return md_time_rfc3339(ns, buf, len);
}

/* "local → cvm", escaped. */
static void dir_title(FILE *out, const md_report *r, md_dir d) {
  esc(out, md_report_agent_label(d == MD_DIR_FORWARD ? &r->a : &r->b, d ? "B" : "A"));
  fputs(" → ", out);
  esc(out, md_report_agent_label(d == MD_DIR_FORWARD ? &r->b : &r->a, d ? "A" : "B"));
}

/* A table row for an agent: name, address, host, version, clock offset. */
static void agent_row(FILE *out, const char *tag, const md_report_agent *a) {
  fprintf(out, "| %s | **", tag);
  esc(out, md_report_agent_label(a, tag));
  fputs("**", out);
  if (!a->present) {
    fputs(" — no agent (plain address", out);
    if (a->probe_address) {
      fputc(' ', out);
      esc(out, a->probe_address);
    }
    fputs("): forward path only |\n", out);
    return;
  }
  if (a->address) {
    fputs(" — ", out);
    esc(out, a->address);
  }
  if (a->hostname) {
    fputs(", host ", out);
    esc(out, a->hostname);
  }
  if (a->version) {
    fputs(", mtr-agent ", out);
    esc(out, a->version);
  }
  if (a->version)
    fprintf(out, ", clock %+.1f ms", a->clock_offset_ms);
  fputs(" |\n", out);
}

/* The suspect's end of a link: "A (source)" for TTL 0, else "IP (TTL n)". */
static void link_end(FILE *out, const md_report *r, md_dir d, int ttl, const char *ip) {
  if (ttl == 0) {
    esc(out, md_report_agent_label(d == MD_DIR_FORWARD ? &r->a : &r->b, d ? "B" : "A"));
    fputs(" (source)", out);
    return;
  }
  if (ip) {
    esc(out, ip);
    fprintf(out, " (TTL %d)", ttl);
  } else {
    fprintf(out, "TTL %d", ttl);
  }
}

/* The diagnosis: status, direction, suspect, evidence, limits, advice. */
static void diagnosis_md(FILE *out, const md_report *r) {
  const md_diagnosis *d = &r->diagnosis;
  fputs("### Diagnosis\n\n", out);
  fprintf(out, "- **Status:** %s\n", md_status_name(d->status));
  fprintf(out, "- **Faulty direction:** %s", md_direction_name(d->direction));
  if (d->direction == MD_DIRECTION_FORWARD || d->direction == MD_DIRECTION_REVERSE) {
    fputs(" (", out);
    dir_title(out, r, d->direction == MD_DIRECTION_FORWARD ? MD_DIR_FORWARD : MD_DIR_REVERSE);
    fputc(')', out);
  }
  fputc('\n', out);
  if (d->has_suspect) {
    const md_suspect *s = &d->suspect;
    fprintf(out, "- **Suspect:** %s on the %s path, link ", md_suspect_kind_name(s->kind),
            md_dir_name(s->path));
    link_end(out, r, s->path, s->from_ttl, s->from_ip);
    fputs(" → ", out);
    link_end(out, r, s->path, s->to_ttl, s->to_ip);
    fprintf(out, ", confidence %.0f%%\n", s->confidence * 100.0);
    if (s->n_evidence > 0 && s->evidence) {
      fputs("- **Evidence:**\n", out);
      for (int i = 0; i < s->n_evidence; i++) {
        fputs("  - ", out);
        esc(out, s->evidence[i]);
        fputc('\n', out);
      }
    }
  } else {
    fputs("- **Suspect:** none\n", out);
  }
  for (int i = 0; d->rate_limited && i < d->n_rate_limited; i++) {
    const md_rate_limited *x = &d->rate_limited[i];
    fprintf(out, "%s%s TTL %d ", i == 0 ? "- **ICMP rate-limited (not loss):** " : ", ",
            md_dir_name(x->path), x->ttl);
    esc(out, x->ip);
  }
  if (d->n_rate_limited > 0)
    fputc('\n', out);
  if (d->n_advice > 0 && d->advice) {
    fputs("\n**Advice**\n\n", out);
    for (int i = 0; i < d->n_advice; i++) {
      fprintf(out, "%d. ", i + 1);
      esc(out, d->advice[i]);
      fputc('\n', out);
    }
  }
  fputc('\n', out);
}

/* The longest run of backticks in s. */
static int max_ticks(const char *s) {
  int best = 0, run = 0;
  for (; *s; s++) {
    run = *s == '`' ? run + 1 : 0;
    best = run > best ? run : best;
  }
  return best;
}

/* A code fence of n backticks (and an info string) on its own line. */
static void fence(FILE *out, int n, const char *info) {
  for (int i = 0; i < n; i++)
    fputc('`', out);
  fprintf(out, "%s\n", info);
}

/* One direction: heading, verdict, the mtr report in a fence. */
static int path_md(FILE *out, const md_report *r, md_dir d) {
  const md_path *p = d == MD_DIR_FORWARD ? r->forward : r->reverse;
  const md_path_verdict *v = d == MD_DIR_FORWARD ? &r->forward_verdict : &r->reverse_verdict;
  fprintf(out, "### %s path: ", d == MD_DIR_FORWARD ? "Forward" : "Reverse");
  dir_title(out, r, d);
  if (p && p->target) {
    fputs(" (", out);
    esc(out, p->target);
    fputc(')', out);
  }
  fputs("\n\n", out);
  if (p && !p->complete)
    fputs("*The run did not finish all its cycles.*\n\n", out);
  if (p && v->present) {
    fputs("**Verdict:** ", out);
    esc(out, v->text && v->text[0] ? v->text : "-");
    fprintf(out, " (destination loss %.1f%%, segment %s", v->destination_loss_pct,
            md_segment_name(v->segment));
    if (v->first_loss_ttl > 0)
      fprintf(out, ", loss from TTL %d", v->first_loss_ttl);
    if (v->latency_jump_ttl > 0)
      fprintf(out, ", latency jump at TTL %d", v->latency_jump_ttl);
    fputs(")\n\n", out);
  }
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  if (!mem)
    return -ENOMEM;
  int rc = md_render_path_report(r, d, mem);
  if (fclose(mem) != 0 || !buf || rc != 0) {
    free(buf);
    return rc ? rc : -ENOMEM;
  }
  if (!p) {
    fputs("*", out);
    for (char *q = buf; *q; q++)
      if (*q == '\n')
        *q = ' ';
    for (size_t l = strlen(buf); l > 0 && buf[l - 1] == ' ';)
      buf[--l] = '\0'; /* "text *" would not close the emphasis */
    esc(out, buf);
    fputs("*\n\n", out);
    free(buf);
    return 0;
  }
  int n = max_ticks(buf) + 1;
  n = n < 3 ? 3 : n;
  fence(out, n, "text");
  fputs(buf, out);
  fence(out, n, "");
  fputc('\n', out);
  free(buf);
  return 0;
}

/* A hop cell: the responder's IP (and hostname), or empty. */
static void hop_cell(FILE *out, const md_path *p, int ttl) {
  char ip[256], name[256];
  if (!p || ttl <= 0) {
    fputs(" | ", out);
    return;
  }
  md_hop_name(p, ttl, true, ip, sizeof ip);
  md_hop_name(p, ttl, false, name, sizeof name);
  fprintf(out, "%d | ", ttl);
  esc(out, ip);
  if (strcmp(ip, name) != 0) {
    fputs(" (", out);
    esc(out, name);
    fputc(')', out);
  }
}

/* The alignment table. */
static int alignment_md(FILE *out, const md_report *r) {
  md_align_row *rows = NULL;
  int n = 0;
  if (md_align_rows(r, false, &rows, &n) != 0)
    return -ENOMEM;
  fprintf(out, "### Alignment: %s\n\n",
          !r->reverse               ? "forward path only"
          : r->alignment.asymmetric ? "asymmetric"
                                    : "symmetric");
  fputs("| Fwd TTL | Forward hop | Rev TTL | Reverse hop | How |\n", out);
  fputs("|---:|---|---:|---|---|\n", out);
  for (int i = 0; i < n; i++) {
    fputs("| ", out);
    hop_cell(out, r->forward, rows[i].fwd_ttl);
    fputs(" | ", out);
    hop_cell(out, r->reverse, rows[i].rev_ttl);
    fputs(" | ", out);
    char how[64];
    snprintf(how, sizeof how, "%s", rows[i].how && rows[i].how[0] ? rows[i].how : "-");
    for (char *c = how; *c; c++)
      *c = *c == '_' ? ' ' : *c;
    esc(out, how);
    fputs(" |\n", out);
  }
  fputc('\n', out);
  free(rows);
  return 0;
}

/* The whole report as markdown. */
int md_render_markdown(const md_report *r, FILE *out) {
  if (!r || !out)
    return -EINVAL;
  const md_diagnosis *d = &r->diagnosis;
  char b1[64], b2[64];
  fprintf(out, "## mtrdiag: %s", md_status_name(d->status));
  if (d->direction == MD_DIRECTION_FORWARD || d->direction == MD_DIRECTION_REVERSE) {
    fputs(" — fault on the ", out);
    fputs(md_direction_name(d->direction), out);
    fputs(" path (", out);
    dir_title(out, r, d->direction == MD_DIRECTION_FORWARD ? MD_DIR_FORWARD : MD_DIR_REVERSE);
    fputc(')', out);
  } else if (d->direction == MD_DIRECTION_BOTH) {
    fputs(" — faults in both directions", out);
  }
  fputs("\n\n", out);
  if (d->summary && d->summary[0]) {
    fputs("> ", out);
    esc(out, d->summary);
    fputs("\n\n", out);
  }
  fputs("| | |\n|---|---|\n", out);
  fputs("| Report | ", out);
  esc(out, r->id[0] ? r->id : "(no id)");
  fputs(" |\n", out);
  fprintf(out, "| Started | %s |\n| Finished | %s |\n", when(r->started_at_ns, b1, sizeof b1),
          when(r->finished_at_ns, b2, sizeof b2));
  if (r->ran_by) {
    fputs("| Ran by | ", out);
    esc(out, r->ran_by);
    fputs(" |\n", out);
  }
  agent_row(out, "A", &r->a);
  agent_row(out, "B", &r->b);
  const md_report_options *o = &r->options;
  fputs("| Options | ", out);
  esc(out, o->protocol[0] ? o->protocol : "icmp");
  fprintf(out, ", %d cycles, interval %.3g s, %d bytes, TTL %d..%d", o->cycles,
          o->interval_ms / 1000.0, o->psize, o->first_ttl > 0 ? o->first_ttl : 1, o->max_ttl);
  if (o->port)
    fprintf(out, ", port %d", o->port);
  if (o->no_dns)
    fputs(", no DNS", out);
  if (o->family)
    fprintf(out, ", IPv%d", o->family);
  fputs(" |\n", out);
  if (r->has_skew)
    fprintf(out, "| Start skew | %.1f ms |\n", r->start_skew_ms);
  fputc('\n', out);

  diagnosis_md(out, r);
  int rc = path_md(out, r, MD_DIR_FORWARD);
  if (!rc)
    rc = path_md(out, r, MD_DIR_REVERSE);
  if (!rc && (r->forward && r->reverse))
    rc = alignment_md(out, r);
  if (rc)
    return rc;

  if (r->has_oneway) {
    fputs("### One-way (agent-to-agent stream)\n\n", out);
    fputs("| Direction | Sent | Received | Loss | Delay avg | Delay stdev |\n", out);
    fputs("|---|---:|---:|---:|---:|---:|\n", out);
    for (int i = MD_DIR_FORWARD; i <= MD_DIR_REVERSE; i++) {
      const md_oneway_dir *w = i == MD_DIR_FORWARD ? &r->oneway_forward : &r->oneway_reverse;
      fputs("| ", out);
      dir_title(out, r, (md_dir)i);
      fprintf(out, " | %u | %u | %.1f%% | %.1f ms | %.1f ms |\n", w->sent, w->recv, w->loss_pct,
              w->delay_avg_ms, w->delay_stdev_ms);
    }
    fputc('\n', out);
  }
  if (r->n_followup > 0 && r->followup) {
    fputs("### Follow-up probes\n\n", out);
    fputs("| From | Target | Protocol | Sent | Received | Loss | Avg | Why |\n", out);
    fputs("|---|---|---|---:|---:|---:|---:|---|\n", out);
    for (int i = 0; i < r->n_followup; i++) {
      const md_followup *f = &r->followup[i];
      fputs("| ", out);
      esc(out, f->from);
      fputs(" | ", out);
      esc(out, f->target);
      fputs(" | ", out);
      esc(out, f->protocol);
      fprintf(out, " | %u | %u | %.1f%% | %.1f ms | ", f->sent, f->recv, f->loss_pct, f->avg_ms);
      esc(out, f->why);
      fputs(" |\n", out);
    }
    fputc('\n', out);
  }
  if (r->n_errors > 0 && r->errors) {
    fputs("### Errors\n\n| Agent | Code | Message |\n|---|---|---|\n", out);
    for (int i = 0; i < r->n_errors; i++) {
      const md_report_error *e = &r->errors[i];
      fputs("| ", out);
      esc(out, e->agent ? e->agent : "controller");
      fputs(" | ", out);
      esc(out, e->code);
      fputs(" | ", out);
      esc(out, e->message);
      fputs(" |\n", out);
    }
    fputc('\n', out);
  }
  fprintf(out, "<sub>mtrdiag %s, report schema %s</sub>\n", MD_VERSION, MD_REPORT_SCHEMA);
  return ferror(out) ? -EIO : 0;
}
