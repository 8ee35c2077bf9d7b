/* history: past diagnoses in SQLite (the `history:` file of the controller
 * configuration), for `mtrctl history` and `mtrctl show ID`.
 *
 * One row per report: id, start time, A, B, status, faulty direction,
 * summary, a complete flag and the full report JSON. A diagnosis is stored
 * when it starts (md_history_begin: complete = 0, status "incomplete") and
 * replaced when it ends (md_history_finish: complete = 1), so a run that
 * was killed half-way still shows up, as incomplete.
 *
 * The file and its missing parent directories are created (0600 and 0700).
 * A table schema_version holds the layout's version; a file from a newer
 * mtrctl is refused rather than changed. Writers wait up to 5 s for a lock
 * held by another mtrctl. Every error message names the file.
 */
#ifndef MD_HISTORY_H
#define MD_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md_report.h"

#define MD_HISTORY_VERSION 1 /* the layout this code writes */

typedef struct md_history md_history;

/* One line of `mtrctl history`. */
typedef struct md_history_entry {
  char id[40];
  int64_t started_at_ns;
  char *a, *b; /* A's name; B's name or address */
  md_status status;
  md_direction direction;
  char *summary;
  bool complete; /* false: the diagnosis never finished */
} md_history_entry;

/* Open (creating when needed) the history at path. 0 or a negative errno
 * with err: "history PATH: not an SQLite database (file is not a
 * database)". */
int md_history_open(const char *path, md_history **out, char *err, size_t errlen);
/* Close it. NULL is fine. */
void md_history_close(md_history *h);
/* The file it was opened from. */
const char *md_history_path(const md_history *h);

/* Store a diagnosis that has just started: complete = 0 and status
 * "incomplete" whatever r says. -EEXIST when the id is already stored. */
int md_history_begin(md_history *h, const md_report *r, char *err, size_t errlen);
/* Store the finished diagnosis, replacing what begin stored (or adding it
 * when begin was not called): complete = 1. */
int md_history_finish(md_history *h, const md_report *r, char *err, size_t errlen);

/* Up to limit entries (limit <= 0: all), newest first. *out is malloc'd
 * (free with md_history_list_free). */
int md_history_list(md_history *h, int limit, md_history_entry **out, int *n, char *err,
                    size_t errlen);
void md_history_list_free(md_history_entry *e, int n);

/* The stored report with this id. -ENOENT when there is none; -EBADMSG
 * when its JSON does not read back (err says which field). */
int md_history_load(md_history *h, const char *id, md_report **out, char *err, size_t errlen);

#endif
