/* render_text: the report for a terminal, and what all renderers share
 * (format names, the dispatcher, the side-by-side alignment lines, hop
 * names).
 *
 * Layout: a header (id, times, agents, options), the diagnosis first (what
 * an operator reads), then each direction in mtr's --report layout with its
 * verdict under it, the alignment table, the one-way stream, the follow-up
 * probes and the errors. Everything printed passes through tput(), which
 * drops control characters, so a hostile hostname cannot drive the
 * terminal.
 */
#include "render.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "render_common.h"
#include "report_json.h"

/* --- Shared --------------------------------------------------------------------- */

/* The format names of --format. */
int md_format_parse(const char *name, md_format *out) {
  static const struct {
    const char *name;
    md_format f;
  } names[] = {{"text", MD_FORMAT_TEXT},
               {"json", MD_FORMAT_JSON},
               {"markdown", MD_FORMAT_MARKDOWN},
               {"md", MD_FORMAT_MARKDOWN},
               {"html", MD_FORMAT_HTML}};
  if (!name)
    return -EINVAL;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcasecmp(name, names[i].name) == 0) {
      *out = names[i].f;
      return 0;
    }
  return -EINVAL;
}

/* "text", "json", "markdown", "html". */
const char *md_format_name(md_format f) {
  switch (f) {
  case MD_FORMAT_TEXT:
    return "text";
  case MD_FORMAT_JSON:
    return "json";
  case MD_FORMAT_MARKDOWN:
    return "markdown";
  case MD_FORMAT_HTML:
    return "html";
  }
  return "?";
}

/* The report in the chosen format. */
int md_render(const md_report *r, md_format f, FILE *out) {
  switch (f) {
  case MD_FORMAT_TEXT:
    return md_render_text(r, out);
  case MD_FORMAT_JSON:
    return md_report_write_json(r, out);
  case MD_FORMAT_MARKDOWN:
    return md_render_markdown(r, out);
  case MD_FORMAT_HTML:
    return md_render_html(r, out);
  }
  return -EINVAL;
}

/* The agent's name, else its address, else dflt. */
const char *md_report_agent_label(const md_report_agent *a, const char *dflt) {
  if (a->name && a->name[0])
    return a->name;
  if (a->probe_address && a->probe_address[0])
    return a->probe_address;
  if (a->address && a->address[0])
    return a->address;
  return dflt;
}

/* Hostname or IP of a hop's first responder; "???" when it never answered. */
const char *md_hop_name(const md_path *p, int ttl, bool numeric, char *buf, size_t len) {
  const md_hop *h = p ? md_path_hop_at(p, ttl) : NULL;
  if (!h || h->n_hosts == 0) {
    snprintf(buf, len, "???");
    return buf;
  }
  const md_host *host = &h->hosts[0];
  if (!numeric && host->hostname && host->hostname[0])
    snprintf(buf, len, "%s", host->hostname);
  else
    md_addr_str(&host->addr, buf, len);
  return buf;
}

/* Whether ttl is in the list v[0..n). */
static bool in_list(const int *v, int n, int ttl) {
  for (int i = 0; v && i < n; i++)
    if (v[i] == ttl)
      return true;
  return false;
}

/* Lines of the alignment: walk the forward path in TTL order; before each
 * shared pair put the reverse hops above it (higher reverse TTLs) not yet
 * placed, then the pair; after the forward path, what is left of the
 * reverse path, highest TTL first. Pairs naming a TTL that a path does not
 * have, or a hop already paired, are ignored. */
int md_align_rows(const md_report *r, bool endpoints, md_align_row **rows, int *n) {
  const md_path *f = r->forward, *v = r->reverse;
  int f_first = f ? f->first_ttl : 1, f_last = f ? f->first_ttl + f->n_hops - 1 : 0;
  int v_first = v ? v->first_ttl : 1, v_last = v ? v->first_ttl + v->n_hops - 1 : 0;
  int fwd_pair[MD_MAX_TTL + 1], rev_pair[MD_MAX_TTL + 1];
  bool rev_done[MD_MAX_TTL + 1];
  for (int i = 0; i <= MD_MAX_TTL; i++) {
    fwd_pair[i] = rev_pair[i] = -1;
    rev_done[i] = false;
  }
  const md_alignment *al = &r->alignment;
  for (int i = 0; al->shared && i < al->n_shared; i++) {
    int ft = al->shared[i].forward_ttl, rt = al->shared[i].reverse_ttl;
    if (ft < f_first || ft > f_last || rt < v_first || rt > v_last || fwd_pair[ft] >= 0 ||
        rev_pair[rt] >= 0)
      continue;
    fwd_pair[ft] = i;
    rev_pair[rt] = i;
  }
  size_t cap = (size_t)(f ? f->n_hops : 0) + (size_t)(v ? v->n_hops : 0) + 3;
  md_align_row *out = calloc(cap, sizeof *out);
  if (!out)
    return -ENOMEM;
  int k = 0;
  int bottom_fwd = -1;
  if (endpoints) {
    int top_rev = -1;
    if (v && v->reached && v->n_hops > 0 && rev_pair[v_last] < 0) {
      top_rev = v_last;
      rev_done[v_last] = true;
    }
    if (f && f->reached && f->n_hops > 0 && fwd_pair[f_last] < 0)
      bottom_fwd = f_last;
    out[k++] = (md_align_row){f ? 0 : -1, top_rev, top_rev > 0 ? "endpoint" : ""};
  }
  for (int t = f_first; f && t <= f_last; t++) {
    if (t == bottom_fwd)
      continue;
    if (fwd_pair[t] < 0) {
      out[k++] = (md_align_row){
          t, -1, in_list(al->forward_only_ttls, al->n_forward_only, t) ? "forward only" : ""};
      continue;
    }
    const md_align_pair *p = &al->shared[fwd_pair[t]];
    for (int x = v_last; x > p->reverse_ttl; x--)
      if (!rev_done[x] && rev_pair[x] < 0) {
        out[k++] = (md_align_row){
            -1, x, in_list(al->reverse_only_ttls, al->n_reverse_only, x) ? "reverse only" : ""};
        rev_done[x] = true;
      }
    out[k++] = (md_align_row){t, p->reverse_ttl, p->how};
    rev_done[p->reverse_ttl] = true;
  }
  for (int x = v_last; v && x >= v_first; x--)
    if (!rev_done[x]) {
      out[k++] = (md_align_row){
          -1, x, in_list(al->reverse_only_ttls, al->n_reverse_only, x) ? "reverse only" : ""};
      rev_done[x] = true;
    }
  if (endpoints)
    out[k++] = (md_align_row){bottom_fwd, v ? 0 : -1, bottom_fwd > 0 ? "endpoint" : ""};
  *rows = out;
  *n = k;
  return 0;
}

/* --- Terminal output ----------------------------------------------------------- */

/* Write s without control characters (C0, DEL, UTF-8-encoded C1); newlines
 * kept when keep_nl. */
static void tput_n(FILE *out, const char *s, bool keep_nl) {
  const unsigned char *p = (const unsigned char *)s;
  for (; *p; p++) {
    if (*p == '\n' && keep_nl) {
      fputc('\n', out);
    } else if (*p < 0x20 || *p == 0x7f) {
      fputc(*p == '\t' ? ' ' : '?', out);
    } else if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
      fputc('?', out);
      p++;
    } else {
      fputc(*p, out);
    }
  }
}

static void tprintf(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* printf, then tput (newlines kept: they can only come from fmt or from
 * values the caller has already flattened with flat()). */
static void tprintf(FILE *out, const char *fmt, ...) {
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  tput_n(out, s, true);
  free(s);
}

/* s with newlines and tabs as spaces, "" for NULL, in buf. */
static const char *flat(const char *s, char *buf, size_t len) {
  snprintf(buf, len, "%s", s ? s : "");
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t')
      *p = ' ';
  return buf;
}

/* A flattened copy of a free-text value (summary, evidence, advice, a
 * verdict, an error message), as long as the value is: the text report
 * shows such sentences whole, as the JSON holds them. */
typedef struct flatbuf {
  char *s;
  size_t cap;
} flatbuf;

/* flat() into fb, growing it; "" if memory runs out. */
static const char *flatx(flatbuf *fb, const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n + 1 > fb->cap) {
    char *p = realloc(fb->s, n + 1);
    if (!p)
      return "";
    fb->s = p;
    fb->cap = n + 1;
  }
  return flat(s, fb->s, fb->cap);
}

/* Whether any responder of the path carries MPLS labels (then the report
 * shows them, as mtr -e would). */
static bool has_mpls(const md_path *p) {
  for (int i = 0; i < p->n_hops; i++)
    for (int k = 0; k < p->hops[i].n_hosts; k++)
      if (p->hops[i].hosts[k].n_mpls > 0)
        return true;
  return false;
}

/* Whether s has a byte that must not reach a terminal or a table. */
static bool has_ctl(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; s && *p; p++)
    if (*p < 0x20 || *p == 0x7f || (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F))
      return true;
  return false;
}

/* A copy of s with control characters as '?' (NULL stays NULL). */
static char *clean_dup(const char *s, bool *ok) {
  if (!s)
    return NULL;
  char *d = strdup(s);
  if (!d) {
    *ok = false;
    return NULL;
  }
  unsigned char *p = (unsigned char *)d;
  for (; *p; p++) {
    if (*p < 0x20 || *p == 0x7f)
      *p = '?';
    else if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
      p[0] = p[1] = '?';
  }
  return d;
}

/* The path itself when its names are clean, else a copy with control
 * characters in the names replaced (so one name stays on one line of the
 * mtr layout). *copy is what to free. NULL on OOM. */
static const md_path *clean_path(const md_path *p, md_path **copy) {
  *copy = NULL;
  bool dirty = has_ctl(p->source) || has_ctl(p->target) || has_ctl(p->target_name);
  for (int i = 0; !dirty && i < p->n_hops; i++)
    for (int k = 0; k < p->hops[i].n_hosts; k++)
      dirty = dirty || has_ctl(p->hops[i].hosts[k].hostname);
  if (!dirty)
    return p;
  bool ok = true;
  char *src = clean_dup(p->source, &ok), *tgt = clean_dup(p->target, &ok);
  char *name = clean_dup(p->target_name, &ok);
  md_path *c = ok ? md_path_new(src, tgt, name, p->first_ttl) : NULL;
  free(src);
  free(tgt);
  free(name);
  if (!c)
    return NULL;
  c->started_at_ns = p->started_at_ns;
  c->finished_at_ns = p->finished_at_ns;
  c->complete = p->complete;
  c->reached = p->reached;
  for (int i = 0; ok && i < p->n_hops; i++) {
    const md_hop *from = &p->hops[i];
    md_hop *to = md_path_hop(c, from->ttl);
    if (!to) {
      ok = false;
      break;
    }
    to->st = from->st;
    for (int k = 0; ok && k < from->n_hosts; k++) {
      const md_host *fh = &from->hosts[k];
      md_host *th = md_hop_add_host(to, &fh->addr, fh->mpls, fh->n_mpls);
      char *hn = clean_dup(fh->hostname, &ok);
      if (!th || (ok && md_host_set_hostname(th, hn) != 0))
        ok = false;
      else
        th->count = fh->count;
      free(hn);
    }
  }
  if (!ok) {
    md_path_free(c);
    return NULL;
  }
  *copy = c;
  return c;
}

/* One direction in mtr's --report layout, or the line saying why not. */
int md_render_path_report(const md_report *r, md_dir d, FILE *out) {
  const md_path *p = d == MD_DIR_FORWARD ? r->forward : r->reverse;
  const md_report_agent *src = d == MD_DIR_FORWARD ? &r->a : &r->b;
  const md_report_agent *dst = d == MD_DIR_FORWARD ? &r->b : &r->a;
  if (!p) {
    char b1[256], b2[256];
    const char *who =
        flat(md_report_agent_label(src, d == MD_DIR_FORWARD ? "A" : "B"), b1, sizeof b1);
    const char *to =
        flat(md_report_agent_label(dst, d == MD_DIR_FORWARD ? "B" : "A"), b2, sizeof b2);
    if (d == MD_DIR_REVERSE && !r->b.present)
      tprintf(out, "not measured: %s is no agent (forward path only)\n", who);
    else
      tprintf(out, "not measured: %s's run produced no path to %s (see errors)\n", who, to);
    return ferror(out) ? -EIO : 0;
  }
  md_path *copy;
  const md_path *cp = clean_path(p, &copy);
  bool ok = true;
  char *local = src->hostname && src->hostname[0] ? clean_dup(src->hostname, &ok) : NULL;
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = cp && ok ? open_memstream(&buf, &len) : NULL;
  if (!mem) {
    md_path_free(copy);
    free(local);
    return -ENOMEM;
  }
  md_path_render_report(cp, mem, local, has_mpls(cp));
  md_path_free(copy);
  free(local);
  if (fclose(mem) != 0 || !buf) {
    free(buf);
    return -ENOMEM;
  }
  tput_n(out, buf, true);
  free(buf);
  return ferror(out) ? -EIO : 0;
}

/* "198.51.100.10:7447, host h, version v" for the header. */
static void agent_line(FILE *out, const char *tag, const md_report_agent *a) {
  char name[128], addr[160];
  tprintf(out, "  %-9s %s", tag, flat(md_report_agent_label(a, tag), name, sizeof name));
  if (!a->present) {
    tprintf(out, " (no agent: plain address%s%s)\n", a->probe_address ? " " : "",
            a->probe_address ? flat(a->probe_address, addr, sizeof addr) : "");
    return;
  }
  if (a->address)
    tprintf(out, "  %s", flat(a->address, addr, sizeof addr));
  if (a->probe_address &&
      (!a->address || strncmp(a->address, a->probe_address, strlen(a->probe_address)) != 0))
    tprintf(out, "  probes to %s", flat(a->probe_address, addr, sizeof addr));
  if (a->hostname)
    tprintf(out, "  host %s", flat(a->hostname, addr, sizeof addr));
  if (a->version)
    tprintf(out, "  mtr-agent %s", flat(a->version, addr, sizeof addr));
  if (a->version) /* the agent answered: its clock offset is known */
    tprintf(out, "  clock %+.1f ms", a->clock_offset_ms);
  tprintf(out, "\n");
}

/* The hop named by a TTL of a direction, for the suspect line: the source
 * agent for TTL 0. */
static const char *ttl_name(const md_report *r, md_dir d, int ttl, const char *ip, char *buf,
                            size_t len) {
  if (ttl == 0) {
    const md_report_agent *a = d == MD_DIR_FORWARD ? &r->a : &r->b;
    snprintf(buf, len, "%s (source)", md_report_agent_label(a, d == MD_DIR_FORWARD ? "A" : "B"));
  } else if (ip) {
    snprintf(buf, len, "%s (TTL %d)", ip, ttl);
  } else {
    snprintf(buf, len, "TTL %d", ttl);
  }
  return buf;
}

/* "local -> cvm" for a direction. */
static const char *dir_title(const md_report *r, md_dir d, char *buf, size_t len) {
  const md_report_agent *s = d == MD_DIR_FORWARD ? &r->a : &r->b;
  const md_report_agent *t = d == MD_DIR_FORWARD ? &r->b : &r->a;
  char x[128], y[128];
  snprintf(buf, len, "%s -> %s", flat(md_report_agent_label(s, d ? "B" : "A"), x, sizeof x),
           flat(md_report_agent_label(t, d ? "A" : "B"), y, sizeof y));
  return buf;
}

/* The diagnosis block: status, direction, summary, suspect, evidence,
 * rate-limited hops, advice. */
static void diagnosis_text(const md_report *r, FILE *out) {
  const md_diagnosis *d = &r->diagnosis;
  flatbuf fb = {0};
  char b2[320];
  char status[16];
  snprintf(status, sizeof status, "%s", md_status_name(d->status));
  for (char *p = status; *p; p++)
    *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
  tprintf(out, "Diagnosis: %s", status);
  if (d->direction == MD_DIRECTION_FORWARD || d->direction == MD_DIRECTION_REVERSE)
    tprintf(out, ", %s path (%s)", md_direction_name(d->direction),
            dir_title(r, d->direction == MD_DIRECTION_FORWARD ? MD_DIR_FORWARD : MD_DIR_REVERSE, b2,
                      sizeof b2));
  else if (d->direction == MD_DIRECTION_BOTH)
    tprintf(out, ", both directions");
  tprintf(out, "\n");
  if (d->summary && d->summary[0])
    tprintf(out, "  %s\n", flatx(&fb, d->summary));
  if (d->has_suspect) {
    const md_suspect *s = &d->suspect;
    char b3[320];
    tprintf(out, "  Suspect:  %s on the %s path, link %s -> %s, confidence %.0f%%\n",
            md_suspect_kind_name(s->kind), md_dir_name(s->path),
            ttl_name(r, s->path, s->from_ttl, s->from_ip, b2, sizeof b2),
            ttl_name(r, s->path, s->to_ttl, s->to_ip, b3, sizeof b3), s->confidence * 100.0);
    for (int i = 0; s->evidence && i < s->n_evidence; i++)
      tprintf(out, "  %-9s - %s\n", i == 0 ? "Evidence:" : "", flatx(&fb, s->evidence[i]));
  }
  for (int i = 0; d->rate_limited && i < d->n_rate_limited; i++) {
    const md_rate_limited *x = &d->rate_limited[i];
    tprintf(out, "  %-9s %s TTL %d %s (ICMP rate limiting, not loss on the path)\n",
            i == 0 ? "Limited:" : "", md_dir_name(x->path), x->ttl,
            flat(x->ip ? x->ip : "", b2, sizeof b2));
  }
  if (d->n_advice > 0 && d->advice) {
    tprintf(out, "  Advice:\n");
    for (int i = 0; i < d->n_advice; i++)
      tprintf(out, "    %d. %s\n", i + 1, flatx(&fb, d->advice[i]));
  }
  free(fb.s);
}

/* A direction's verdict, one or two lines under its mtr report. */
static void verdict_text(const md_path_verdict *v, FILE *out) {
  char b[1024];
  if (!v->present) {
    tprintf(out, "  Verdict: none (not analysed)\n");
    return;
  }
  flatbuf fb = {0};
  tprintf(out, "  Verdict: %s\n", v->text && v->text[0] ? flatx(&fb, v->text) : "-");
  free(fb.s);
  tprintf(out, "           destination loss %.1f%%, segment %s", v->destination_loss_pct,
          md_segment_name(v->segment));
  if (v->first_loss_ttl > 0)
    tprintf(out, ", loss from TTL %d%s%s", v->first_loss_ttl, v->first_loss_ip ? " " : "",
            v->first_loss_ip ? flat(v->first_loss_ip, b, sizeof b) : "");
  if (v->latency_jump_ttl > 0)
    tprintf(out, ", latency jump at TTL %d", v->latency_jump_ttl);
  for (int i = 0; v->rate_limited_ttls && i < v->n_rate_limited; i++)
    tprintf(out, "%s%d", i == 0 ? ", rate-limited TTL " : ",", v->rate_limited_ttls[i]);
  tprintf(out, "\n");
}

/* One side of an alignment line: "TTL  name" padded to w, or blanks. */
static void align_cell(FILE *out, const md_path *p, int ttl, int w) {
  char name[256];
  if (ttl <= 0 || !p) {
    tprintf(out, "%*s", w + 6, "");
    return;
  }
  md_hop_name(p, ttl, true, name, sizeof name);
  tprintf(out, "%4d  %-*s", ttl, w, name);
}

/* The alignment: forward TTL/IP | reverse TTL/IP | how. */
static void alignment_text(const md_report *r, FILE *out) {
  md_align_row *rows = NULL;
  int n = 0;
  char name[256];
  if (md_align_rows(r, false, &rows, &n) != 0)
    return;
  int w = 15;
  for (int i = 0; i < n; i++) {
    int lf = rows[i].fwd_ttl > 0
                 ? (int)strlen(md_hop_name(r->forward, rows[i].fwd_ttl, true, name, sizeof name))
                 : 0;
    int lr = rows[i].rev_ttl > 0
                 ? (int)strlen(md_hop_name(r->reverse, rows[i].rev_ttl, true, name, sizeof name))
                 : 0;
    w = lf > w ? lf : w;
    w = lr > w ? lr : w;
  }
  tprintf(out, "Alignment: %s\n",
          r->alignment.asymmetric ? "asymmetric (the directions cross different routers)"
                                  : "symmetric (the same routers both ways)");
  tprintf(out, "   TTL  %-*s   TTL  %-*s   how\n", w, "forward", w, "reverse");
  for (int i = 0; i < n; i++) {
    tprintf(out, "  ");
    align_cell(out, r->forward, rows[i].fwd_ttl, w);
    tprintf(out, " |");
    align_cell(out, r->reverse, rows[i].rev_ttl, w);
    tprintf(out, "   %s\n", rows[i].how && rows[i].how[0] ? rows[i].how : "-");
  }
  free(rows);
}

/* The whole report for a terminal. */
int md_render_text(const md_report *r, FILE *out) {
  if (!r || !out)
    return -EINVAL;
  char b1[256], b2[64], b3[64];
  const md_report_options *o = &r->options;
  tprintf(out, "mtrdiag report %s\n", r->id[0] ? r->id : "(no id)");
  tprintf(out, "  %-9s %s  finished %s", "started", md__when(r->started_at_ns, b2, sizeof b2),
          md__when(r->finished_at_ns, b3, sizeof b3));
  if (r->ran_by)
    tprintf(out, "  by %s", flat(r->ran_by, b1, sizeof b1));
  tprintf(out, "\n");
  agent_line(out, "A", &r->a);
  agent_line(out, "B", &r->b);
  tprintf(out, "  %-9s %s, %d cycles, interval %.3g s, %d bytes, TTL %d..%d", "options",
          o->protocol[0] ? o->protocol : "icmp", o->cycles, o->interval_ms / 1000.0, o->psize,
          o->first_ttl > 0 ? o->first_ttl : 1, o->max_ttl);
  if (o->port)
    tprintf(out, ", port %d", o->port);
  if (o->tos)
    tprintf(out, ", tos %d", o->tos);
  if (o->no_dns)
    tprintf(out, ", no DNS");
  if (o->family)
    tprintf(out, ", IPv%d", o->family);
  tprintf(out, "\n");
  if (r->has_skew)
    tprintf(out, "  %-9s %.1f ms between the starts of the two runs\n", "skew", r->start_skew_ms);
  tprintf(out, "\n");
  diagnosis_text(r, out);

  for (int d = MD_DIR_FORWARD; d <= MD_DIR_REVERSE; d++) {
    const md_path *p = d == MD_DIR_FORWARD ? r->forward : r->reverse;
    tprintf(out, "\n%s path: %s", d == MD_DIR_FORWARD ? "Forward" : "Reverse",
            dir_title(r, (md_dir)d, b1, sizeof b1));
    if (p && p->target)
      tprintf(out, " (%s)", flat(p->target, b2, sizeof b2));
    if (p && !p->complete)
      tprintf(out, " [run incomplete]");
    tprintf(out, "\n");
    md_render_path_report(r, (md_dir)d, out);
    if (p)
      verdict_text(d == MD_DIR_FORWARD ? &r->forward_verdict : &r->reverse_verdict, out);
  }

  if (r->forward && r->reverse) {
    tprintf(out, "\n");
    alignment_text(r, out);
  }

  if (r->has_oneway) {
    tprintf(out, "\nOne-way (agent-to-agent stream)\n");
    for (int d = MD_DIR_FORWARD; d <= MD_DIR_REVERSE; d++) {
      const md_oneway_dir *w = d == MD_DIR_FORWARD ? &r->oneway_forward : &r->oneway_reverse;
      tprintf(out, "  %-8s %-24s %u sent, %u received, %.1f%% loss, delay %.1f ms (stdev %.1f)\n",
              md_dir_name((md_dir)d), dir_title(r, (md_dir)d, b1, sizeof b1), w->sent, w->recv,
              w->loss_pct, w->delay_avg_ms, w->delay_stdev_ms);
    }
  }

  if (r->n_followup > 0 && r->followup) {
    tprintf(out, "\nFollow-up probes\n");
    for (int i = 0; i < r->n_followup; i++) {
      const md_followup *f = &r->followup[i];
      tprintf(out, "  %s -> %s %s: %u sent, %u received, %.1f%% loss, avg %.1f ms\n",
              flat(f->from ? f->from : "?", b2, sizeof b2),
              flat(f->target ? f->target : "?", b3, sizeof b3), f->protocol, f->sent, f->recv,
              f->loss_pct, f->avg_ms);
      if (f->why && f->why[0]) {
        flatbuf fb = {0};
        tprintf(out, "      why: %s\n", flatx(&fb, f->why));
        free(fb.s);
      }
    }
  }

  if (r->n_errors > 0 && r->errors) {
    tprintf(out, "\nErrors\n");
    for (int i = 0; i < r->n_errors; i++) {
      const md_report_error *e = &r->errors[i];
      flatbuf fb = {0};
      tprintf(out, "  %s: %s: %s\n", flat(e->agent ? e->agent : "controller", b1, sizeof b1),
              flat(e->code, b2, sizeof b2), flatx(&fb, e->message));
      free(fb.s);
    }
  }
  return ferror(out) ? -EIO : 0;
}
