/* render_html: the report as one self-contained HTML page: inline CSS, an
 * inline SVG, no script, no external resource (a Content-Security-Policy
 * says so to the browser too), so it can be attached to a ticket and
 * opened anywhere.
 *
 * The drawing puts the forward path (A -> B, top to bottom) in the left
 * column and the reverse path (B -> A, bottom to top) in the right one, on
 * the lines md_align_rows() gives, so that a router both directions cross
 * faces itself; a grey line joins such pairs. Hops are circles coloured by
 * loss (green < 1 %, amber < 10 %, red from 10 %; grey for a hop that never
 * answered, slate for a hop that only rate-limits ICMP) with the TTL inside
 * and the name, average latency and loss beside. The suspect link is drawn
 * thick, red and dashed, with a label. Tables follow: the diagnosis, the
 * alignment, each path with mtr's columns, the one-way stream, follow-ups,
 * errors.
 *
 * Every string from the report goes through esc() (& < > " ' and control
 * characters), in the SVG as in the tables.
 */
#include "render.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "render_common.h"

/* Geometry of the drawing (SVG user units = CSS px at 100 %). */
#define SVG_W 1040
#define COL_F 425    /* x of the forward column */
#define COL_R 615    /* x of the reverse column */
#define ROW_H 60     /* one alignment line */
#define TOP 78       /* y of the first line */
#define NODE_R 14    /* hop circle radius */
#define LABEL_GAP 24 /* from a node's centre to its label */
#define LABEL_MAX 44 /* characters of a name in the drawing */

/* --- Escaping ------------------------------------------------------------------- */

/* Bytes of the UTF-8 character starting with lead byte c (1 for a stray
 * continuation byte). */
static size_t u8len(unsigned char c) {
  return c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
}

/* s escaped for HTML text and attribute values, at most max characters
 * (0: all); a cut string ends with "…". */
static void esc_n(FILE *out, const char *s, size_t max) {
  if (!s)
    return;
  size_t chars = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    if (max && chars == max && p[0]) {
      fputs("…", out);
      return;
    }
    size_t n = u8len(*p);
    switch (*p) {
    case '&':
      fputs("&amp;", out);
      break;
    case '<':
      fputs("&lt;", out);
      break;
    case '>':
      fputs("&gt;", out);
      break;
    case '"':
      fputs("&quot;", out);
      break;
    case '\'':
      fputs("&#39;", out);
      break;
    default:
      if (*p < 0x20 || *p == 0x7f) {
        fputc(*p == '\n' ? ' ' : '?', out);
      } else {
        for (size_t i = 0; i < n && p[i]; i++)
          fputc(p[i], out);
        for (size_t i = 1; i < n; i++)
          if (!p[i]) /* truncated sequence at the end */
            return;
      }
    }
    p += (*p < 0x80) ? 1 : n;
    chars++;
  }
}

/* s escaped, whole. */
static void esc(FILE *out, const char *s) {
  esc_n(out, s, 0);
}

/* HTML's tables and escaping, for what render_common writes. */
static const md__markup HTML = {
    .esc = esc,
    .head_open = "<tr><th>",
    .head_close = "</th><td>",
    .row_open = "<tr><td>",
    .cell_sep = "</td><td>",
    .row_close = "</td></tr>\n",
    .strong_open = "<strong>",
    .strong_close = "</strong>",
    .code_open = "<code>",
    .code_close = "</code>",
};

/* --- Figures -------------------------------------------------------------------- */

/* Whether ttl of direction d is known to rate-limit ICMP (path verdict or
 * diagnosis). */
static bool rate_limited(const md_report *r, md_dir d, int ttl) {
  const md_path_verdict *v = d == MD_DIR_FORWARD ? &r->forward_verdict : &r->reverse_verdict;
  for (int i = 0; v->present && v->rate_limited_ttls && i < v->n_rate_limited; i++)
    if (v->rate_limited_ttls[i] == ttl)
      return true;
  const md_diagnosis *g = &r->diagnosis;
  for (int i = 0; g->rate_limited && i < g->n_rate_limited; i++)
    if (g->rate_limited[i].path == d && g->rate_limited[i].ttl == ttl)
      return true;
  return false;
}

/* CSS class of a hop by what it shows: ok, warn, bad, none (silent), rl. */
static const char *loss_class(const md_report *r, md_dir d, const md_hop *h) {
  if (!h || h->n_hosts == 0)
    return "none";
  if (rate_limited(r, d, h->ttl))
    return "rl";
  double loss = md_stats_loss_pct(&h->st);
  return loss < 1.0 ? "ok" : loss < 10.0 ? "warn" : "bad";
}

/* --- The drawing ---------------------------------------------------------------- */

/* A column heading: "forward ↓ local → cvm" / "cvm → local ↑ reverse",
 * long names cut so that the heading stays over its column. */
static void svg_dir_title(FILE *out, const md_report *r, md_dir d) {
  const md_report_agent *s = d == MD_DIR_FORWARD ? &r->a : &r->b;
  const md_report_agent *t = d == MD_DIR_FORWARD ? &r->b : &r->a;
  if (d == MD_DIR_FORWARD)
    fputs("forward ↓ ", out);
  esc_n(out, md_report_agent_label(s, d ? "B" : "A"), 18);
  fputs(" → ", out);
  esc_n(out, md_report_agent_label(t, d ? "A" : "B"), 18);
  if (d == MD_DIR_REVERSE)
    fputs(" ↑ reverse", out);
}

/* A hop node: circle with its TTL, and two lines of label on the outer
 * side (left of the forward column, right of the reverse one). */
static void svg_hop(FILE *out, const md_report *r, md_dir d, const md_path *p, int ttl, int y) {
  const md_hop *h = md_path_hop_at(p, ttl);
  int x = d == MD_DIR_FORWARD ? COL_F : COL_R;
  const char *cls = loss_class(r, d, h);
  char ip[256], name[256];
  md_hop_name(p, ttl, true, ip, sizeof ip);
  md_hop_name(p, ttl, false, name, sizeof name);
  fprintf(out, "<g class=\"hop %s\"><title>", cls);
  fprintf(out, "%s TTL %d: ", md_dir_name(d), ttl);
  esc(out, name);
  if (strcmp(ip, name) != 0) {
    fputs(" (", out);
    esc(out, ip);
    fputc(')', out);
  }
  if (h && h->n_hosts > 1)
    fprintf(out, " and %d more responders (ECMP)", h->n_hosts - 1);
  fputs("</title>", out);
  fprintf(out, "<circle cx=\"%d\" cy=\"%d\" r=\"%d\"/>", x, y, NODE_R);
  fprintf(out, "<text class=\"ttl\" x=\"%d\" y=\"%d\">%d</text>", x, y + 4, ttl);
  bool left = d == MD_DIR_FORWARD;
  int lx = left ? x - LABEL_GAP : x + LABEL_GAP;
  const char *anchor = left ? "end" : "start";
  fprintf(out, "<text class=\"name\" x=\"%d\" y=\"%d\" text-anchor=\"%s\">", lx, y - 3, anchor);
  esc_n(out, name, LABEL_MAX);
  if (h && h->n_hosts > 1)
    fprintf(out, " +%d", h->n_hosts - 1);
  fputs("</text>", out);
  fprintf(out, "<text class=\"fig\" x=\"%d\" y=\"%d\" text-anchor=\"%s\">", lx, y + 13, anchor);
  if (!h || h->n_hosts == 0) {
    fputs("no reply", out);
  } else {
    if (strcmp(ip, name) != 0) {
      esc_n(out, ip, LABEL_MAX);
      fputs(" · ", out);
    }
    fprintf(out, "avg %.1f ms · loss %.0f%%", md_stats_avg_ms(&h->st), md_stats_loss_pct(&h->st));
    if (strcmp(cls, "rl") == 0)
      fputs(" · rate-limited", out);
  }
  fputs("</text></g>\n", out);
}

/* A source node: the agent's name in a box, its address beside. */
static void svg_source(FILE *out, const md_report_agent *a, const char *tag, md_dir d, int y) {
  int x = d == MD_DIR_FORWARD ? COL_F : COL_R;
  fprintf(out, "<g class=\"src\"><title>%s: ", tag);
  esc(out, md_report_agent_label(a, tag));
  fprintf(out, " (source of the %s path)</title>", md_dir_name(d));
  fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"56\" height=\"28\" rx=\"6\"/>", x - 28, y - 14);
  fprintf(out, "<text class=\"srctag\" x=\"%d\" y=\"%d\">%s</text>", x, y + 5, tag);
  bool left = d == MD_DIR_FORWARD;
  int lx = left ? x - 36 : x + 36;
  const char *anchor = left ? "end" : "start";
  fprintf(out, "<text class=\"name\" x=\"%d\" y=\"%d\" text-anchor=\"%s\">", lx, y - 3, anchor);
  esc_n(out, md_report_agent_label(a, tag), LABEL_MAX);
  fputs("</text>", out);
  fprintf(out, "<text class=\"fig\" x=\"%d\" y=\"%d\" text-anchor=\"%s\">", lx, y + 13, anchor);
  if (a->probe_address) {
    esc_n(out, a->probe_address, LABEL_MAX);
    fputs(" · ", out);
  }
  fprintf(out, "%s source</text></g>\n", md_dir_name(d));
}

/* The y of each node of a column by TTL (-1: not drawn). */
typedef struct col_y {
  int y[MD_MAX_TTL + 1];
} col_y;

/* The y range [lo, hi] of the suspect link on direction d's column, or
 * false when the suspect is elsewhere or not drawn. */
static bool suspect_span(const md_report *r, md_dir d, const col_y *cy, int *lo, int *hi) {
  const md_diagnosis *g = &r->diagnosis;
  if (!g->has_suspect || g->suspect.path != d)
    return false;
  const md_suspect *s = &g->suspect;
  int from = s->from_ttl >= 0 && s->from_ttl <= MD_MAX_TTL ? cy->y[s->from_ttl] : -1;
  int to = s->to_ttl >= 0 && s->to_ttl <= MD_MAX_TTL ? cy->y[s->to_ttl] : -1;
  if (from < 0 || to < 0 || from == to)
    return false;
  *lo = from < to ? from : to;
  *hi = from < to ? to : from;
  return true;
}

/* The edges of a column in travel order: forward top-down, reverse
 * bottom-up; the edges of the suspect link in red. */
static void svg_edges(FILE *out, const md_report *r, const md_align_row *rows, int n, md_dir d,
                      const col_y *cy) {
  int x = d == MD_DIR_FORWARD ? COL_F : COL_R;
  int lo = 0, hi = 0;
  bool sus = suspect_span(r, d, cy, &lo, &hi);
  int prev = -1;
  for (int k = 0; k < n; k++) {
    int i = d == MD_DIR_FORWARD ? k : n - 1 - k;
    int ttl = d == MD_DIR_FORWARD ? rows[i].fwd_ttl : rows[i].rev_ttl;
    if (ttl < 0)
      continue;
    int y = TOP + i * ROW_H;
    if (prev >= 0) {
      int y1 = d == MD_DIR_FORWARD ? prev + NODE_R + 1 : prev - NODE_R - 1;
      int y2 = d == MD_DIR_FORWARD ? y - NODE_R - 4 : y + NODE_R + 4;
      bool red = sus && prev >= lo && prev <= hi && y >= lo && y <= hi;
      fprintf(out,
              "<line class=\"edge%s\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
              "marker-end=\"url(#%s)\"/>\n",
              red ? " sus" : "", x, y1, x, y2, red ? "arrowred" : "arrow");
    }
    prev = y;
  }
}

/* The suspect link: a thick red dashed arc bulging into the gap between
 * the columns from one of its hops to the other, a ring on the far hop,
 * and a label at the arc. A link to a hop that is not drawn gets the ring
 * (or nothing). */
static void svg_suspect(FILE *out, const md_report *r, const col_y *fy, const col_y *ry) {
  const md_diagnosis *g = &r->diagnosis;
  if (!g->has_suspect)
    return;
  const md_suspect *s = &g->suspect;
  bool fwd = s->path == MD_DIR_FORWARD;
  const col_y *cy = fwd ? fy : ry;
  int x = fwd ? COL_F : COL_R, side = fwd ? 1 : -1;
  int from = s->from_ttl >= 0 && s->from_ttl <= MD_MAX_TTL ? cy->y[s->from_ttl] : -1;
  int to = s->to_ttl >= 0 && s->to_ttl <= MD_MAX_TTL ? cy->y[s->to_ttl] : -1;
  if (from < 0 && to < 0)
    return;
  int mid = from < 0 ? to : to < 0 ? from : (from + to) / 2;
  int apex = x + side * 34;
  fprintf(out, "<g class=\"suspectmark\"><title>suspect: %s on the %s path, TTL %d -> %d</title>",
          md_suspect_kind_name(s->kind), md_dir_name(s->path), s->from_ttl, s->to_ttl);
  if (from >= 0 && to >= 0 && from != to)
    fprintf(out, "<path class=\"suspect\" d=\"M%d,%d Q%d,%d %d,%d\"/>", x + side * (NODE_R + 2),
            from, x + side * 66, mid, x + side * (NODE_R + 2), to);
  if (to >= 0)
    fprintf(out, "<circle class=\"ring\" cx=\"%d\" cy=\"%d\" r=\"%d\"/>", x, to, NODE_R + 6);
  int lx = apex + side * (from != to && from >= 0 && to >= 0 ? 18 : 20);
  const char *anchor = fwd ? "start" : "end";
  char kind[32];
  snprintf(kind, sizeof kind, "%s", md_suspect_kind_name(s->kind));
  for (char *c = kind; *c; c++)
    *c = *c == '_' ? ' ' : *c;
  fprintf(out, "<text class=\"slabel\" x=\"%d\" y=\"%d\" text-anchor=\"%s\">suspect: %s</text>", lx,
          mid - 4, anchor, kind);
  fprintf(out,
          "<text class=\"slabel2\" x=\"%d\" y=\"%d\" text-anchor=\"%s\">confidence %.0f%%</text>"
          "</g>\n",
          lx, mid + 10, anchor, s->confidence * 100.0);
}

/* The legend under the drawing. */
static void svg_legend(FILE *out, int y) {
  static const struct {
    const char *cls, *text;
  } items[] = {{"ok", "loss < 1%"},
               {"warn", "loss 1–10%"},
               {"bad", "loss ≥ 10%"},
               {"rl", "ICMP rate-limited (not path loss)"},
               {"none", "no reply"}};
  int x = 20;
  static const int widths[] = {88, 98, 98, 232, 84};
  for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
    fprintf(out,
            "<g class=\"hop %s\"><circle cx=\"%d\" cy=\"%d\" r=\"7\"/></g>"
            "<text class=\"legend\" x=\"%d\" y=\"%d\">%s</text>\n",
            items[i].cls, x + 7, y, x + 20, y + 4, items[i].text);
    x += widths[i];
  }
  fprintf(out,
          "<line class=\"suspect\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
          "<text class=\"legend\" x=\"%d\" y=\"%d\">suspect link</text>\n",
          x, y, x + 30, y, x + 38, y + 4);
  x += 122;
  fprintf(out,
          "<line class=\"pair\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
          "<text class=\"legend\" x=\"%d\" y=\"%d\">same router both ways</text>\n",
          x, y, x + 30, y, x + 38, y + 4);
}

/* The whole drawing. */
static int svg(FILE *out, const md_report *r) {
  md_align_row *rows = NULL;
  int n = 0;
  if (md_align_rows(r, true, &rows, &n) != 0)
    return -ENOMEM;
  int height = TOP + (n > 0 ? n - 1 : 0) * ROW_H + 70;
  col_y fy, ry;
  for (int i = 0; i <= MD_MAX_TTL; i++)
    fy.y[i] = ry.y[i] = -1;
  for (int i = 0; i < n; i++) {
    if (rows[i].fwd_ttl >= 0)
      fy.y[rows[i].fwd_ttl] = TOP + i * ROW_H;
    if (rows[i].rev_ttl >= 0)
      ry.y[rows[i].rev_ttl] = TOP + i * ROW_H;
  }
  fprintf(out,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
          "height=\"%d\" role=\"img\" aria-label=\"forward and reverse paths side by side\">\n",
          SVG_W, height, SVG_W, height);
  fputs("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
        "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">"
        "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#6b7785\"/></marker>"
        "<marker id=\"arrowred\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
        "markerWidth=\"6\" markerHeight=\"6\" orient=\"auto-start-reverse\">"
        "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#d62d20\"/></marker></defs>\n",
        out);
  /* column headings */
  fprintf(out, "<text class=\"colhead\" x=\"%d\" y=\"24\" text-anchor=\"end\">", COL_F + 30);
  svg_dir_title(out, r, MD_DIR_FORWARD);
  fputs("</text>\n", out);
  fprintf(out, "<text class=\"colhead\" x=\"%d\" y=\"24\" text-anchor=\"start\">", COL_R - 30);
  svg_dir_title(out, r, MD_DIR_REVERSE);
  fputs("</text>\n", out);
  fprintf(out,
          "<line class=\"sep\" x1=\"%d\" y1=\"36\" x2=\"%d\" y2=\"36\"/>\n"
          "<line class=\"sep\" x1=\"%d\" y1=\"36\" x2=\"%d\" y2=\"36\"/>\n",
          COL_F - 380, COL_F + 30, COL_R - 30, COL_R + 380);

  /* links between the faces of a shared router */
  for (int i = 0; i < n; i++) {
    if (rows[i].fwd_ttl < 0 || rows[i].rev_ttl < 0 || !rows[i].how || !rows[i].how[0])
      continue;
    int y = TOP + i * ROW_H;
    bool mate = strcmp(rows[i].how, "same_ip") != 0;
    fprintf(out, "<line class=\"pair%s\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>",
            mate ? " mate" : "", COL_F + NODE_R + 2, y, COL_R - NODE_R - 2, y);
    fprintf(out, "<text class=\"how\" x=\"%d\" y=\"%d\">", (COL_F + COL_R) / 2, y - 5);
    char how[64];
    snprintf(how, sizeof how, "%s", rows[i].how);
    for (char *c = how; *c; c++)
      *c = *c == '_' ? ' ' : *c;
    esc(out, how);
    fputs("</text>\n", out);
  }
  svg_edges(out, r, rows, n, MD_DIR_FORWARD, &fy);
  svg_edges(out, r, rows, n, MD_DIR_REVERSE, &ry);
  svg_suspect(out, r, &fy, &ry);

  for (int i = 0; i < n; i++) {
    int y = TOP + i * ROW_H;
    if (rows[i].fwd_ttl == 0)
      svg_source(out, &r->a, "A", MD_DIR_FORWARD, y);
    else if (rows[i].fwd_ttl > 0)
      svg_hop(out, r, MD_DIR_FORWARD, r->forward, rows[i].fwd_ttl, y);
    if (rows[i].rev_ttl == 0)
      svg_source(out, &r->b, "B", MD_DIR_REVERSE, y);
    else if (rows[i].rev_ttl > 0)
      svg_hop(out, r, MD_DIR_REVERSE, r->reverse, rows[i].rev_ttl, y);
  }
  /* a direction that was not measured says so in its column */
  for (int d = MD_DIR_FORWARD; d <= MD_DIR_REVERSE; d++) {
    if (d == MD_DIR_FORWARD ? r->forward != NULL : r->reverse != NULL)
      continue;
    bool fwd = d == MD_DIR_FORWARD;
    int x = fwd ? COL_F : COL_R;
    fprintf(out, "<rect class=\"absent\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"8\"/>\n",
            fwd ? x - 330 : x - 20, TOP - 20, 350, n > 1 ? (n - 1) * ROW_H + 40 : 40);
    fprintf(out, "<text class=\"absentt\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
            fwd ? x - 155 : x + 155, TOP + ((n > 1 ? n - 1 : 0) * ROW_H) / 2);
    fprintf(out, "%s path not measured</text>\n", md_dir_name((md_dir)d));
    fprintf(out, "<text class=\"fig\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
            fwd ? x - 155 : x + 155, TOP + ((n > 1 ? n - 1 : 0) * ROW_H) / 2 + 18);
    if (!fwd && !r->b.present) {
      esc_n(out, md_report_agent_label(&r->b, "B"), LABEL_MAX);
      fputs(" is no agent: forward only", out);
    } else {
      fputs("the run produced no path (see errors)", out);
    }
    fputs("</text>\n", out);
  }
  svg_legend(out, height - 26);
  fputs("</svg>\n", out);
  free(rows);
  return 0;
}

/* --- Tables --------------------------------------------------------------------- */

static const char CSS[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "color:#1d2733;background:#f6f7f9;margin:0}"
    "main{max-width:1100px;margin:0 auto;padding:20px 24px 40px}"
    "h1{font-size:22px;margin:6px 0 4px}h2{font-size:17px;margin:28px 0 8px;"
    "border-bottom:1px solid #d9dee5;padding-bottom:4px}"
    ".badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-size:13px;"
    "vertical-align:middle;letter-spacing:.04em;text-transform:uppercase}"
    ".healthy{background:#2f9e44}.degraded{background:#d08700}.unreachable{background:#c92a2a}"
    ".incomplete{background:#6b7785}"
    ".summary{font-size:16px;margin:8px 0 14px;padding:10px 14px;background:#fff;"
    "border-left:4px solid #6b7785;border-radius:4px}"
    ".summary.healthy,.summary.degraded,.summary.unreachable,.summary.incomplete"
    "{background:#fff;color:#1d2733}"
    ".summary.healthy{border-color:#2f9e44}.summary.degraded{border-color:#d08700}"
    ".summary.unreachable{border-color:#c92a2a}"
    "table{border-collapse:collapse;background:#fff;margin:6px 0;font-size:13px}"
    "th,td{border:1px solid #d9dee5;padding:3px 8px;text-align:left;vertical-align:top}"
    "th{background:#eef1f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "table.meta th{width:110px}"
    "td.ok{background:#e6f4ea}td.warn{background:#fff3d6}td.bad{background:#fde2e1}"
    "td.rl{background:#e8edf3}td.none{color:#8a94a0}"
    "figure{margin:8px 0;background:#fff;border:1px solid #d9dee5;border-radius:6px;"
    "overflow-x:auto}"
    "svg{display:block;font-family:system-ui,'DejaVu Sans',sans-serif}"
    "svg .colhead{font-size:14px;font-weight:600;fill:#1d2733}"
    "svg .sep{stroke:#d9dee5;stroke-width:1}"
    "svg .hop circle{stroke:#fff;stroke-width:2}"
    "svg .hop.ok circle{fill:#2f9e44}svg .hop.warn circle{fill:#e8a200}"
    "svg .hop.bad circle{fill:#d62d20}svg .hop.rl circle{fill:#7d8fa6}"
    "svg .hop.none circle{fill:#fff;stroke:#9aa3ad;stroke-dasharray:3 2;stroke-width:1.5}"
    "svg .ttl{font-size:11px;font-weight:700;fill:#fff;text-anchor:middle}"
    "svg .hop.none .ttl{fill:#6b7785}"
    "svg .name{font-size:12.5px;fill:#1d2733}svg .fig{font-size:11px;fill:#5b6673}"
    "svg .src rect{fill:#1d2733}svg .srctag{fill:#fff;font-size:13px;font-weight:700;"
    "text-anchor:middle}"
    "svg .edge{stroke:#9aa3ad;stroke-width:2}"
    "svg .pair{stroke:#7a8ca3;stroke-width:1.5}svg .pair.mate{stroke-dasharray:5 3}"
    "svg .how{font-size:10.5px;fill:#5b6673;text-anchor:middle}"
    "svg .edge.sus{stroke:#d62d20;stroke-width:3}"
    "svg .suspect{fill:none;stroke:#d62d20;stroke-width:5;stroke-dasharray:8 5;"
    "stroke-linecap:round}"
    "svg .ring{fill:none;stroke:#d62d20;stroke-width:2.5}"
    "svg .slabel{font-size:12.5px;font-weight:700;fill:#c92a2a;paint-order:stroke;"
    "stroke:#fff;stroke-width:4px;stroke-linejoin:round}"
    "svg .slabel2{font-size:11px;fill:#c92a2a;paint-order:stroke;stroke:#fff;stroke-width:4px}"
    "svg .absent{fill:#f6f7f9;stroke:#c5ccd4;stroke-dasharray:6 4}"
    "svg .absentt{font-size:14px;font-weight:600;fill:#6b7785}"
    "svg .legend{font-size:11.5px;fill:#3d4853}"
    "pre{background:#fff;border:1px solid #d9dee5;padding:8px 10px;overflow-x:auto;"
    "font-size:12px}"
    "ul.ev,ol.adv{margin:4px 0 4px 0;padding-left:22px}"
    "footer{margin-top:30px;color:#8a94a0;font-size:12px}";

/* A hop's mtr columns as table cells. */
static void hop_cells(FILE *out, const md_report *r, md_dir d, const md_hop *h) {
  const md_stats *s = &h->st;
  bool any = h->n_hosts > 0;
  fprintf(out, "<td class=\"n %s\">%.1f%%</td><td class=\"n\">%u</td>", loss_class(r, d, h),
          md_stats_loss_pct(s), s->sent);
  if (!any) {
    fputs("<td class=\"n\">-</td><td class=\"n\">-</td><td class=\"n\">-</td>"
          "<td class=\"n\">-</td><td class=\"n\">-</td>",
          out);
    return;
  }
  fprintf(out,
          "<td class=\"n\">%.1f</td><td class=\"n\">%.1f</td><td class=\"n\">%.1f</td>"
          "<td class=\"n\">%.1f</td><td class=\"n\">%.1f</td>",
          md_stats_last_ms(s), md_stats_avg_ms(s), md_stats_best_ms(s), md_stats_worst_ms(s),
          md_stats_stdev_ms(s));
}

/* One responder: "hostname (ip)" or "ip", then its MPLS labels. */
static void host_html(FILE *out, const md_host *host) {
  char ip[MD_ADDRSTRLEN];
  md_addr_str(&host->addr, ip, sizeof ip);
  if (host->hostname && host->hostname[0]) {
    esc(out, host->hostname);
    fputs(" (", out);
    esc(out, ip);
    fputc(')', out);
  } else {
    esc(out, ip);
  }
  for (int k = 0; k < host->n_mpls && k < MD_MAX_MPLS; k++)
    fprintf(out, "<br><small>[MPLS: Lbl %u TC %u S %u TTL %u]</small>", host->mpls[k].label,
            host->mpls[k].tc, host->mpls[k].s, host->mpls[k].ttl);
}

/* One direction: heading, verdict, a table with mtr's columns. */
static void path_html(FILE *out, const md_report *r, md_dir d) {
  const md_path *p = d == MD_DIR_FORWARD ? r->forward : r->reverse;
  const md_path_verdict *v = d == MD_DIR_FORWARD ? &r->forward_verdict : &r->reverse_verdict;
  fprintf(out, "<section id=\"%s\"><h2>", md_dir_name(d));
  md__path_title(out, &HTML, r, d);
  fputs("</h2>\n", out);
  if (!p) {
    fputs("<p><em>Not measured: ", out);
    if (d == MD_DIR_REVERSE && !r->b.present) {
      esc(out, md_report_agent_label(&r->b, "B"));
      fputs(" is no agent, so only the forward path was traced.", out);
    } else {
      fputs("the run produced no path (see the errors).", out);
    }
    fputs("</em></p></section>\n", out);
    return;
  }
  if (!p->complete)
    fputs("<p><em>The run did not finish all its cycles.</em></p>\n", out);
  if (v->present) {
    fputs("<p><strong>Verdict:</strong> ", out);
    esc(out, v->text && v->text[0] ? v->text : "-");
    fputs(" <small>", out);
    md__verdict_figures(out, v);
    fputs("</small></p>\n", out);
  }
  fputs("<table><tr><th>TTL</th><th>Host</th><th>Loss%</th><th>Snt</th><th>Last</th>"
        "<th>Avg</th><th>Best</th><th>Wrst</th><th>StDev</th></tr>\n",
        out);
  for (int i = 0; i < p->n_hops; i++) {
    const md_hop *h = &p->hops[i];
    fprintf(out, "<tr><td class=\"n\">%d</td><td>", h->ttl);
    if (h->n_hosts == 0)
      fputs("???", out);
    for (int k = 0; k < h->n_hosts; k++) {
      if (k)
        fputs("<br>", out);
      host_html(out, &h->hosts[k]);
    }
    if (rate_limited(r, d, h->ttl))
      fputs(" <small>(ICMP rate-limited)</small>", out);
    fputs("</td>", out);
    hop_cells(out, r, d, h);
    fputs("</tr>\n", out);
  }
  fputs("</table>\n</section>\n", out);
}

/* A hop cell of the alignment table. */
static void align_cell(FILE *out, const md_report *r, md_dir d, int ttl) {
  const md_path *p = d == MD_DIR_FORWARD ? r->forward : r->reverse;
  if (!p || ttl <= 0) {
    fputs("<td></td><td></td>", out);
    return;
  }
  char ip[256], name[256];
  md_hop_name(p, ttl, true, ip, sizeof ip);
  md_hop_name(p, ttl, false, name, sizeof name);
  fprintf(out, "<td class=\"n\">%d</td><td class=\"%s\">", ttl,
          loss_class(r, d, md_path_hop_at(p, ttl)));
  esc(out, ip);
  if (strcmp(ip, name) != 0) {
    fputs(" <small>", out);
    esc(out, name);
    fputs("</small>", out);
  }
  fputs("</td>", out);
}

/* The alignment table: forward TTL/IP | reverse TTL/IP | how. */
static int alignment_html(FILE *out, const md_report *r) {
  md_align_row *rows = NULL;
  int n = 0;
  if (md_align_rows(r, false, &rows, &n) != 0)
    return -ENOMEM;
  fprintf(out, "<section id=\"alignment\"><h2>Alignment: %s</h2>\n",
          !r->reverse               ? "forward path only"
          : r->alignment.asymmetric ? "asymmetric (the directions cross different routers)"
                                    : "symmetric");
  fputs("<table><tr><th>Fwd TTL</th><th>Forward hop</th><th>Rev TTL</th><th>Reverse hop</th>"
        "<th>How</th></tr>\n",
        out);
  for (int i = 0; i < n; i++) {
    fputs("<tr>", out);
    align_cell(out, r, MD_DIR_FORWARD, rows[i].fwd_ttl);
    align_cell(out, r, MD_DIR_REVERSE, rows[i].rev_ttl);
    fputs("<td>", out);
    esc(out, rows[i].how && rows[i].how[0] ? rows[i].how : "-");
    fputs("</td></tr>\n", out);
  }
  fputs("</table></section>\n", out);
  free(rows);
  return 0;
}

/* The diagnosis section. */
static void diagnosis_html(FILE *out, const md_report *r) {
  const md_diagnosis *d = &r->diagnosis;
  fputs("<section id=\"diagnosis\"><h2>Diagnosis</h2>\n<table class=\"meta\">\n", out);
  fprintf(out, "<tr><th>Status</th><td><span class=\"badge %s\">%s</span></td></tr>\n",
          md_status_name(d->status), md_status_name(d->status));
  fprintf(out, "<tr><th>Direction</th><td>%s", md_direction_name(d->direction));
  md__fault_dir(out, &HTML, r);
  fputs("</td></tr>\n", out);
  if (d->has_suspect) {
    const md_suspect *s = &d->suspect;
    fprintf(out, "<tr><th>Suspect</th><td><strong>%s</strong> on the %s path, link ",
            md_suspect_kind_name(s->kind), md_dir_name(s->path));
    md__suspect_link(out, &HTML, r, s);
    if (s->n_evidence > 0 && s->evidence) {
      fputs("<ul class=\"ev\">", out);
      md__items(out, &HTML, s->evidence, s->n_evidence, "<li>", "</li>");
      fputs("</ul>", out);
    }
    fputs("</td></tr>\n", out);
  } else {
    fputs("<tr><th>Suspect</th><td>none</td></tr>\n", out);
  }
  if (d->n_rate_limited > 0 && d->rate_limited) {
    fputs("<tr><th>Rate-limited</th><td>", out);
    md__rate_limited(out, &HTML, d);
    fputs(" <small>(ICMP rate limiting at these routers, not loss on the path)</small>"
          "</td></tr>\n",
          out);
  }
  if (d->n_advice > 0 && d->advice) {
    fputs("<tr><th>Advice</th><td><ol class=\"adv\">", out);
    md__items(out, &HTML, d->advice, d->n_advice, "<li>", "</li>");
    fputs("</ol></td></tr>\n", out);
  }
  fputs("</table></section>\n", out);
}

/* The whole page. */
int md_render_html(const md_report *r, FILE *out) {
  if (!r || !out)
    return -EINVAL;
  const md_diagnosis *d = &r->diagnosis;
  const char *st = md_status_name(d->status);
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>mtrdiag ",
        out);
  esc(out, r->id);
  fprintf(out, " — %s</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n", st, CSS);
  fputs("<h1>mtrdiag: ", out);
  md__dir_title(out, &HTML, r, MD_DIR_FORWARD);
  fprintf(out, " <span class=\"badge %s\">%s</span></h1>\n", st, st);
  if (d->summary && d->summary[0]) {
    fprintf(out, "<p class=\"summary %s\">", st);
    esc(out, d->summary);
    fputs("</p>\n", out);
  }
  fputs("<table class=\"meta\">\n", out);
  md__header_rows(out, &HTML, r);
  fputs("</table>\n", out);

  diagnosis_html(out, r);
  fputs("<section id=\"drawing\"><h2>Both paths</h2>\n<figure>\n", out);
  int rc = svg(out, r);
  if (rc)
    return rc;
  fputs("</figure></section>\n", out);
  if (r->forward && r->reverse) {
    rc = alignment_html(out, r);
    if (rc)
      return rc;
  }
  path_html(out, r, MD_DIR_FORWARD);
  path_html(out, r, MD_DIR_REVERSE);

  if (r->has_oneway) {
    fputs("<section id=\"oneway\"><h2>One-way (agent-to-agent stream)</h2>\n<table><tr>"
          "<th>Direction</th><th>Sent</th><th>Received</th><th>Loss</th><th>Delay avg</th>"
          "<th>Delay stdev</th></tr>\n",
          out);
    for (int i = MD_DIR_FORWARD; i <= MD_DIR_REVERSE; i++) {
      const md_oneway_dir *w = i == MD_DIR_FORWARD ? &r->oneway_forward : &r->oneway_reverse;
      fputs("<tr><td>", out);
      md__dir_title(out, &HTML, r, (md_dir)i);
      fprintf(out,
              "</td><td class=\"n\">%u</td><td class=\"n\">%u</td><td class=\"n %s\">%.1f%%</td>"
              "<td class=\"n\">%.1f ms</td><td class=\"n\">%.1f ms</td></tr>\n",
              w->sent, w->recv,
              w->loss_pct < 1    ? "ok"
              : w->loss_pct < 10 ? "warn"
                                 : "bad",
              w->loss_pct, w->delay_avg_ms, w->delay_stdev_ms);
    }
    fputs("</table></section>\n", out);
  }
  if (r->n_followup > 0 && r->followup) {
    fputs("<section id=\"followup\"><h2>Follow-up probes</h2>\n<table><tr><th>From</th>"
          "<th>Target</th><th>Protocol</th><th>Sent</th><th>Received</th><th>Loss</th>"
          "<th>Avg</th><th>Why</th></tr>\n",
          out);
    for (int i = 0; i < r->n_followup; i++) {
      const md_followup *f = &r->followup[i];
      const char *cells[] = {f->from, f->target, f->protocol};
      fputs(HTML.row_open, out);
      md__cells(out, &HTML, cells, 3);
      fprintf(out,
              "</td><td class=\"n\">%u</td><td class=\"n\">%u</td><td class=\"n\">%.1f%%</td>"
              "<td class=\"n\">%.1f ms</td><td>",
              f->sent, f->recv, f->loss_pct, f->avg_ms);
      esc(out, f->why);
      fputs(HTML.row_close, out);
    }
    fputs("</table></section>\n", out);
  }
  if (r->n_errors > 0 && r->errors) {
    fputs("<section id=\"errors\"><h2>Errors</h2>\n<table><tr><th>Agent</th><th>Code</th>"
          "<th>Message</th></tr>\n",
          out);
    md__error_rows(out, &HTML, r);
    fputs("</table></section>\n", out);
  }
  fprintf(out, "<footer>mtrdiag %s · report schema %s</footer>\n</main>\n</body>\n</html>\n",
          MD_VERSION, MD_REPORT_SCHEMA);
  return ferror(out) ? -EIO : 0;
}
