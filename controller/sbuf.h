/* sbuf: a growing string for the sentences verdict.c and diagnosis.c
 * build piece by piece. Not a public header.
 *
 *   md__sbuf b = {0};
 *   md__sb_add(&b, "%d hops", n);  ...
 *   char *s = md__sb_take(&b);     (NULL if any append ran out of memory)
 */
#ifndef MD_SBUF_H
#define MD_SBUF_H

#include <stdbool.h>
#include <stddef.h>

/* The text so far; after a failed append, failed is set and later appends
 * do nothing. Start from {0}. */
typedef struct md__sbuf {
  char *s;
  size_t len, cap;
  bool failed;
} md__sbuf;

/* printf onto the end of the buffer. */
__attribute__((format(printf, 2, 3))) void md__sb_add(md__sbuf *b, const char *fmt, ...);

/* The malloc'd text (the caller frees it), or NULL when an append failed
 * (the buffer is freed then). */
char *md__sb_take(md__sbuf *b);

#endif
