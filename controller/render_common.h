/* render_common: what the markdown and HTML renderers write alike, apart
 * from their markup and their escaping, which an md__markup gives (and the
 * time format that the text renderer uses too). Not a public header. */
#ifndef MD_RENDER_COMMON_H
#define MD_RENDER_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "md_report.h"

/* A format's escaping and the markup of its tables. Every string from the
 * report goes through esc. A header row is head_open NAME head_close VALUE
 * row_close; a data row is row_open CELL cell_sep CELL ... row_close. */
typedef struct md__markup {
  void (*esc)(FILE *out, const char *s);
  const char *head_open, *head_close; /* around a row's name */
  const char *row_open, *cell_sep, *row_close;
  const char *strong_open, *strong_close;
  const char *code_open, *code_close;
} md__markup;

/* A realtime ns as RFC 3339, or "-". Returns buf. */
const char *md__when(int64_t ns, char *buf, size_t len);

/* "local → cvm": the direction's source and destination, escaped. */
void md__dir_title(FILE *out, const md__markup *m, const md_report *r, md_dir d);

/* " (local → cvm)" when the diagnosis names one faulty direction, else
 * nothing. */
void md__fault_dir(FILE *out, const md__markup *m, const md_report *r);

/* "Forward path: local → cvm (target)" for a direction's heading. */
void md__path_title(FILE *out, const md__markup *m, const md_report *r, md_dir d);

/* The rows of the header table: report id, start, end, who ran it, both
 * agents, the options, the start skew. */
void md__header_rows(FILE *out, const md__markup *m, const md_report *r);

/* "A (source) → 198.18.2.2 (TTL 2), confidence 80%": the suspect link. */
void md__suspect_link(FILE *out, const md__markup *m, const md_report *r, const md_suspect *s);

/* "forward TTL 3 198.18.2.2, reverse TTL 5 ...": the diagnosis's
 * rate-limited hops. */
void md__rate_limited(FILE *out, const md__markup *m, const md_diagnosis *d);

/* "(destination loss 30.0%, segment transit, loss from TTL 3, ...)": the
 * figures after a verdict's sentence. */
void md__verdict_figures(FILE *out, const md_path_verdict *v);

/* Each of n strings between open and close (evidence, advice). */
void md__items(FILE *out, const md__markup *m, char *const *items, int n, const char *open,
               const char *close);

/* The escaped cells of one table row, cell_sep between them. */
void md__cells(FILE *out, const md__markup *m, const char *const *cells, int n);

/* The rows of the errors table: agent (or "controller"), code, message. */
void md__error_rows(FILE *out, const md__markup *m, const md_report *r);

#endif
