/* render: a report for people. Four formats:
 *   text      the terminal (default): both directions in mtr's --report
 *             layout, the alignment side by side, each direction's verdict,
 *             the diagnosis with its summary and advice, the errors;
 *   json      report_json.h (CONTRACT.md "The report");
 *   markdown  ready to paste into a ticket;
 *   html      one self-contained page (no script, no external resource):
 *             an SVG drawing of both paths side by side, then the tables.
 * Every renderer returns 0, or -EIO when writing failed, or -ENOMEM. Text
 * from the report (names, hostnames, messages) is made safe for each format:
 * control characters dropped for the terminal, escaped for markdown and
 * HTML. */
#ifndef MD_RENDER_H
#define MD_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "md_report.h"

typedef enum md_format {
  MD_FORMAT_TEXT = 0,
  MD_FORMAT_JSON,
  MD_FORMAT_MARKDOWN,
  MD_FORMAT_HTML,
} md_format;

/* "text", "json", "markdown" (or "md"), "html". 0 or -EINVAL. */
int md_format_parse(const char *name, md_format *out);
const char *md_format_name(md_format f);

/* The report in format f. */
int md_render(const md_report *r, md_format f, FILE *out);
int md_render_text(const md_report *r, FILE *out);
int md_render_markdown(const md_report *r, FILE *out);
int md_render_html(const md_report *r, FILE *out);

/* One direction in mtr's --report layout (forward.txt, reverse.txt); a
 * path that was not measured gives one line saying why ("not measured: B
 * is no agent"). */
int md_render_path_report(const md_report *r, md_dir d, FILE *out);

/* --- Shared by the renderers ------------------------------------------------- */

/* One line of the side-by-side alignment: a forward hop and the reverse hop
 * facing it. The reverse path is read backwards (its last hop first), so a
 * router both directions cross sits on one line. */
typedef struct md_align_row {
  int fwd_ttl;     /* -1: none on this line; 0: the forward source (A) */
  int rev_ttl;     /* -1: none on this line; 0: the reverse source (B) */
  const char *how; /* "same_ip", "link_mate", ... (a pair), "forward only",
                      "reverse only", "endpoint", or "" */
} md_align_row;

/* The lines for a report, in forward order. With endpoints, a first line
 * pairs A (forward TTL 0) with the reverse path's last hop when that is A,
 * and a last line pairs the forward path's last hop with B (reverse TTL 0).
 * *rows is malloc'd (caller frees). 0 or -ENOMEM. */
int md_align_rows(const md_report *r, bool endpoints, md_align_row **rows, int *n);

/* A hop's first responder: hostname when known (and !numeric), else its IP;
 * "???" for a hop that never answered. Returns buf. */
const char *md_hop_name(const md_path *p, int ttl, bool numeric, char *buf, size_t len);

/* A name for A or B: the agent's name, else its address, else "A"/"B". */
const char *md_report_agent_label(const md_report_agent *a, const char *dflt);

#endif
