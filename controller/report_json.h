/* report_json: the report as CONTRACT.md ("The report") writes it, and back.
 *
 * md_report -> JSON: every contract field, in the contract's order, plus a
 * few additions (ran_by, options.first_ttl/port/tos/no_dns/family,
 * agents.*.is_agent). Paths are md_path_to_json's PATH objects with
 * "verdict" filled from the report's md_path_verdict. Figures in ms and
 * percentages are rounded to 3 decimals; dump with MD_REPORT_JSON_FLAGS (or
 * md_report_to_json_string) so that they print as 21.3 and not as
 * 21.300000000000001.
 *
 * JSON -> md_report: for stored reports (history, `mtrctl show`, files).
 * Every contract field is required and type-checked; errors name the field
 * ("forward.hops[2].hosts[0].ip: not an IP address"). Bad input never
 * crashes; it gives NULL and the message.
 */
#ifndef MD_REPORT_JSON_H
#define MD_REPORT_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "md_report.h"

/* json_dumps flags for a report: 2-space indent, 15 significant digits
 * (enough for any rounded figure, and free of binary noise). */
#define MD_REPORT_JSON_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(15))
/* The same on one line (history rows, logs). */
#define MD_REPORT_JSON_FLAGS_COMPACT (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* The report object (caller decrefs). NULL on OOM. */
json_t *md_report_to_json(const md_report *r);
/* The report as text (malloc'd, caller frees), indented when pretty, no
 * trailing newline. NULL on OOM. */
char *md_report_to_json_string(const md_report *r, int pretty);
/* The indented report and a newline to out. 0, -ENOMEM or -EIO. */
int md_report_write_json(const md_report *r, FILE *out);

/* A PATH.verdict object (null when !v->present). NULL on OOM. */
json_t *md_path_verdict_to_json(const md_path_verdict *v);

/* A report object back into a new md_report. NULL and err on bad input. */
md_report *md_report_from_json(const json_t *j, char *err, size_t errlen);
/* The same from text (len bytes, need not be NUL-terminated). */
md_report *md_report_from_json_string(const char *text, size_t len, char *err, size_t errlen);
/* The same from a file (report.json); errors name the file. */
md_report *md_report_load_json_file(const char *path, char *err, size_t errlen);

/* x rounded to 3 decimals (0 for NaN or infinity). */
double md_round3(double x);

#endif
