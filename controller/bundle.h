/* bundle: the evidence bundle of `mtrctl diagnose --output DIR`.
 *
 *   report.json   the report (CONTRACT.md "The report")
 *   report.md     markdown, for a ticket
 *   report.html   one self-contained page with the drawing
 *   forward.txt   A -> B in mtr's --report layout
 *   reverse.txt   B -> A in mtr's --report layout ("not measured: B is no
 *                 agent" when there is no reverse path)
 *   meta.json     who ran it, when, from which agents and versions
 *   README.txt    the same for people, and what each file is
 *
 * DIR (and missing parents) is created 0755. Each file is written to a
 * temporary name in DIR and renamed into place, mode 0644, so a reader
 * never sees half a file; existing files of these names are replaced.
 */
#ifndef MD_BUNDLE_H
#define MD_BUNDLE_H

#include <stddef.h>

#include "md_report.h"

typedef struct md_bundle_info {
  const char *user;            /* who ran it; NULL: $USER, else the password database */
  const char *controller_host; /* NULL: gethostname() */
  const char *command;         /* the command line, or NULL */
} md_bundle_info;

/* Write the bundle for r into dir (info may be NULL). 0, or a negative
 * errno with a message naming the file in err. */
int md_bundle_write(const md_report *r, const char *dir, const md_bundle_info *info, char *err,
                    size_t errlen);

#endif
