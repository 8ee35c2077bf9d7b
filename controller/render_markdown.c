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

#include "render_common.h"

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

/* Markdown's tables and escaping, for what render_common writes. */
static const md__markup MD = {
    .esc = esc,
    .head_open = "| ",
    .head_close = " | ",
    .row_open = "| ",
    .cell_sep = " | ",
    .row_close = " |\n",
    .strong_open = "**",
    .strong_close = "**",
    .code_open = "",
    .code_close = "",
};

/* The diagnosis: status, direction, suspect, evidence, limits, advice. */
static void diagnosis_md(FILE *out, const md_report *r) {
  const md_diagnosis *d = &r->diagnosis;
  fputs("### Diagnosis\n\n", out);
  fprintf(out, "- **Status:** %s\n", md_status_name(d->status));
  fprintf(out, "- **Faulty direction:** %s", md_direction_name(d->direction));
  md__fault_dir(out, &MD, r);
  fputc('\n', out);
  if (d->has_suspect) {
    const md_suspect *s = &d->suspect;
    fprintf(out, "- **Suspect:** %s on the %s path, link ", md_suspect_kind_name(s->kind),
            md_dir_name(s->path));
    md__suspect_link(out, &MD, r, s);
    fputc('\n', out);
    if (s->n_evidence > 0 && s->evidence) {
      fputs("- **Evidence:**\n", out);
      md__items(out, &MD, s->evidence, s->n_evidence, "  - ", "\n");
    }
  } else {
    fputs("- **Suspect:** none\n", out);
  }
  if (d->rate_limited && d->n_rate_limited > 0) {
    fputs("- **ICMP rate-limited (not loss):** ", out);
    md__rate_limited(out, &MD, d);
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
  fputs("### ", out);
  md__path_title(out, &MD, r, d);
  fputs("\n\n", out);
  if (p && !p->complete)
    fputs("*The run did not finish all its cycles.*\n\n", out);
  if (p && v->present) {
    fputs("**Verdict:** ", out);
    esc(out, v->text && v->text[0] ? v->text : "-");
    fputc(' ', out);
    md__verdict_figures(out, v);
    fputs("\n\n", out);
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
  fprintf(out, "## mtrdiag: %s", md_status_name(d->status));
  if (d->direction == MD_DIRECTION_FORWARD || d->direction == MD_DIRECTION_REVERSE) {
    fputs(" — fault on the ", out);
    fputs(md_direction_name(d->direction), out);
    fputs(" path", out);
    md__fault_dir(out, &MD, r);
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
  md__header_rows(out, &MD, r);
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
      md__dir_title(out, &MD, r, (md_dir)i);
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
      const char *cells[] = {f->from, f->target, f->protocol};
      fputs(MD.row_open, out);
      md__cells(out, &MD, cells, 3);
      fprintf(out, " | %u | %u | %.1f%% | %.1f ms | ", f->sent, f->recv, f->loss_pct, f->avg_ms);
      esc(out, f->why);
      fputs(MD.row_close, out);
    }
    fputc('\n', out);
  }
  if (r->n_errors > 0 && r->errors) {
    fputs("### Errors\n\n| Agent | Code | Message |\n|---|---|---|\n", out);
    md__error_rows(out, &MD, r);
    fputc('\n', out);
  }
  fprintf(out, "<sub>mtrdiag %s, report schema %s</sub>\n", MD_VERSION, MD_REPORT_SCHEMA);
  return ferror(out) ? -EIO : 0;
}
