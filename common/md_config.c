/* md_config: YAML configuration of mtrctl and mtr-agent.
 *
 * Two passes. First libyaml's event parser builds a small tree of our own
 * (md__node, a flat array linked by indices), enforcing the limits as events
 * arrive: at most MD_CONFIG_MAX_NODES nodes, MD_CONFIG_MAX_DEPTH levels, no
 * aliases (no billion laughs), no tags, one document. The event API rather
 * than yaml_parser_load() because it lets us stop at the first node over a
 * limit instead of after libyaml has built the whole document. Then a walk
 * over the tree fills the structs, checking keys, types and ranges, and
 * keeping the key path ("agents.cvm.address") for messages. Nothing is
 * recursive: the schema is a fixed, shallow shape. */
#include "md_config.h"

#include <yaml.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- The tree ------------------------------------------------------------ */

enum { MD__SCALAR, MD__SEQ, MD__MAP };

typedef struct md__node {
  int type;
  int line;    /* 1-based */
  bool plain;  /* plain scalar: "~", "null" and "" mean null */
  char *value; /* scalars: NUL-terminated copy (no NUL inside) */
  size_t len;
  int first, last, next; /* children and siblings, -1 for none */
  size_t nchild;         /* mappings: 2 per pair (key, value) */
} md__node;

typedef struct md__ctx {
  const char *file; /* display name */
  char *base;       /* directory for relative paths, or NULL */
  char *err;
  size_t errlen;
  md__node *nodes;
  int n, cap;
  int root;
  const char *const *foreign; /* top-level keys of the other program's file */
  const char *foreign_hint;   /* what to say when one of them shows up */
  char path[256];             /* key path of the value being checked */
  size_t pathlen;
} md__ctx;

#define MD__PATH_KEY_MAX 64   /* longest key shown in a path or message */
#define MD__VALUE_SHOW_MAX 80 /* longest value quoted in a message */

/* --- Messages ------------------------------------------------------------ */

/* Copy untrusted text for a message: control characters (C0, DEL, C1) become
 * '?', so a value cannot drive the terminal; long text is cut with "...". */
static void md__clean(const char *s, size_t len, size_t max, char *out, size_t outlen) {
  size_t o = 0;
  if (outlen == 0)
    return;
  for (size_t i = 0; i < len && o + 4 < outlen; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (i >= max) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    if (ch == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
        (unsigned char)s[i + 1] <= 0x9f) {
      out[o++] = '?';
      i++;
    } else if (ch < 0x20 || ch == 0x7f) {
      out[o++] = '?';
    } else {
      out[o++] = (char)ch;
    }
  }
  out[o] = '\0';
}

/* The one place messages are written: "file:line: path: text". line 0 and
 * an empty path leave their parts out. Returns -EINVAL for the caller. */
static int md__vfail(md__ctx *c, int line, bool with_path, const char *fmt, va_list ap) {
  if (!c->err || c->errlen == 0)
    return -EINVAL;
  char lbuf[24] = "";
  if (line > 0)
    snprintf(lbuf, sizeof lbuf, ":%d", line);
  int n = snprintf(c->err, c->errlen, "%s%s: ", c->file, lbuf);
  if (n >= 0 && (size_t)n < c->errlen && with_path && c->pathlen > 0)
    n += snprintf(c->err + n, c->errlen - (size_t)n, "%s: ", c->path);
  if (n >= 0 && (size_t)n < c->errlen)
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
  return -EINVAL;
}

/* An error at a line, naming the current key path. */
static int md__fail(md__ctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int md__fail(md__ctx *c, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = md__vfail(c, line, true, fmt, ap);
  va_end(ap);
  return rc;
}

/* An error about the document itself (syntax, limits): no key path. */
static int md__fail_doc(md__ctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int md__fail_doc(md__ctx *c, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = md__vfail(c, line, false, fmt, ap);
  va_end(ap);
  return rc;
}

/* An error about a scalar's value: the value is quoted after the path. */
static int md__bad(md__ctx *c, int node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int md__bad(md__ctx *c, int node, const char *fmt, ...) {
  const md__node *nd = &c->nodes[node];
  char shown[MD__VALUE_SHOW_MAX * 2 + 8];
  char msg[256];
  md__clean(nd->value, nd->len, MD__VALUE_SHOW_MAX, shown, sizeof shown);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return md__fail(c, nd->line, "\"%s\": %s", shown, msg);
}

/* Out of memory: also a message, so callers can always print err. */
static int md__nomem(md__ctx *c) {
  if (c->err && c->errlen > 0)
    snprintf(c->err, c->errlen, "%s: out of memory", c->file);
  return -ENOMEM;
}

/* --- Key paths ----------------------------------------------------------- */

/* Append ".key" (or "key" at the top); returns the length to pop back to. */
static size_t md__push(md__ctx *c, const char *key, size_t keylen) {
  size_t old = c->pathlen;
  char clean[MD__PATH_KEY_MAX * 2 + 8];
  md__clean(key, keylen, MD__PATH_KEY_MAX, clean, sizeof clean);
  int n = snprintf(c->path + old, sizeof c->path - old, "%s%s", old ? "." : "", clean);
  c->pathlen = (n < 0 || (size_t)n >= sizeof c->path - old) ? strlen(c->path) : old + (size_t)n;
  return old;
}

/* Append "[i]" for a list item. */
static size_t md__push_index(md__ctx *c, size_t i) {
  size_t old = c->pathlen;
  int n = snprintf(c->path + old, sizeof c->path - old, "[%zu]", i);
  c->pathlen = (n < 0 || (size_t)n >= sizeof c->path - old) ? strlen(c->path) : old + (size_t)n;
  return old;
}

static void md__pop(md__ctx *c, size_t old) {
  c->pathlen = old;
  c->path[old] = '\0';
}

/* --- Building the tree from libyaml events -------------------------------- */

/* A new node, linked as the last child of parent (or as the root). */
static int md__add(md__ctx *c, int type, int line, int parent) {
  if (c->n >= MD_CONFIG_MAX_NODES)
    return md__fail_doc(c, line, "too many YAML nodes (the limit is %d)", MD_CONFIG_MAX_NODES);
  if (c->n == c->cap) {
    int cap = c->cap ? c->cap * 2 : 64;
    if (cap > MD_CONFIG_MAX_NODES)
      cap = MD_CONFIG_MAX_NODES;
    md__node *nodes = realloc(c->nodes, (size_t)cap * sizeof *nodes);
    if (!nodes)
      return md__nomem(c);
    c->nodes = nodes;
    c->cap = cap;
  }
  int i = c->n++;
  md__node *nd = &c->nodes[i];
  memset(nd, 0, sizeof *nd);
  nd->type = type;
  nd->line = line;
  nd->first = nd->last = nd->next = -1;
  if (parent < 0) {
    c->root = i;
  } else {
    md__node *p = &c->nodes[parent];
    if (p->last >= 0)
      c->nodes[p->last].next = i;
    else
      p->first = i;
    p->last = i;
    p->nchild++;
  }
  return i;
}

/* Line of an offset into the input, for reader errors that carry no mark. */
static int md__line_of(const char *text, size_t len, size_t off) {
  int line = 1;
  for (size_t i = 0; i < off && i < len; i++)
    if (text[i] == '\n')
      line++;
  return line;
}

/* libyaml's own description of a syntax or encoding error, with its line. */
static int md__yaml_error(md__ctx *c, const yaml_parser_t *p, const char *text, size_t len) {
  const char *problem = p->problem ? p->problem : "unknown error";
  switch (p->error) {
  case YAML_MEMORY_ERROR:
    return md__nomem(c);
  case YAML_READER_ERROR:
    if (p->problem_value >= 0)
      return md__fail_doc(c, md__line_of(text, len, p->problem_offset),
                          "invalid input: %s (byte 0x%02x)", problem, p->problem_value & 0xff);
    return md__fail_doc(c, md__line_of(text, len, p->problem_offset), "invalid input: %s", problem);
  default:
    if (p->context)
      return md__fail_doc(c, (int)p->problem_mark.line + 1,
                          "YAML syntax error: %s (%s started at line %d)", problem, p->context,
                          (int)p->context_mark.line + 1);
    return md__fail_doc(c, (int)p->problem_mark.line + 1, "YAML syntax error: %s", problem);
  }
}

/* A tag or anchor on a node: tags are refused (we do not interpret them),
 * anchors are harmless without aliases and pass. */
static int md__check_tag(md__ctx *c, const yaml_char_t *tag, int line) {
  if (!tag)
    return 0;
  char shown[MD__PATH_KEY_MAX * 2 + 8];
  md__clean((const char *)tag, strlen((const char *)tag), MD__PATH_KEY_MAX, shown, sizeof shown);
  return md__fail_doc(c, line, "YAML tags are not supported (found '%s')", shown);
}

/* One event into the tree. stack/depth: the open collections. */
static int md__event(md__ctx *c, const yaml_event_t *ev, int *stack, int *depth, int *docs) {
  int line = (int)ev->start_mark.line + 1;
  int parent = *depth > 0 ? stack[*depth - 1] : -1;
  int i;
  switch (ev->type) {
  case YAML_DOCUMENT_START_EVENT:
    if (++*docs > 1)
      return md__fail_doc(c, line, "more than one YAML document (only one is allowed)");
    return 0;
  case YAML_ALIAS_EVENT: {
    const char *anchor = ev->data.alias.anchor ? (const char *)ev->data.alias.anchor : "";
    char shown[MD__PATH_KEY_MAX * 2 + 8];
    md__clean(anchor, strlen(anchor), MD__PATH_KEY_MAX, shown, sizeof shown);
    return md__fail_doc(c, line, "YAML aliases (*%s) are not supported; repeat the value", shown);
  }
  case YAML_SCALAR_EVENT: {
    if (md__check_tag(c, ev->data.scalar.tag, line) != 0)
      return -EINVAL;
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (memchr(v, '\0', len))
      return md__fail_doc(c, line, "NUL characters are not allowed in values");
    if ((i = md__add(c, MD__SCALAR, line, parent)) < 0)
      return i;
    md__node *nd = &c->nodes[i];
    nd->value = malloc(len + 1);
    if (!nd->value)
      return md__nomem(c);
    memcpy(nd->value, v, len);
    nd->value[len] = '\0';
    nd->len = len;
    nd->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return 0;
  }
  case YAML_SEQUENCE_START_EVENT:
  case YAML_MAPPING_START_EVENT: {
    const yaml_char_t *tag = ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.tag
                                                                   : ev->data.mapping_start.tag;
    if (md__check_tag(c, tag, line) != 0)
      return -EINVAL;
    if (*depth >= MD_CONFIG_MAX_DEPTH)
      return md__fail_doc(c, line, "nesting deeper than %d levels", MD_CONFIG_MAX_DEPTH);
    if ((i = md__add(c, ev->type == YAML_SEQUENCE_START_EVENT ? MD__SEQ : MD__MAP, line, parent)) <
        0)
      return i;
    stack[(*depth)++] = i;
    return 0;
  }
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT:
    if (*depth > 0)
      (*depth)--;
    return 0;
  default:
    return 0;
  }
}

/* Parse text into c's tree. */
static int md__build(md__ctx *c, const char *text, size_t len) {
  yaml_parser_t p;
  int stack[MD_CONFIG_MAX_DEPTH];
  int depth = 0, docs = 0, rc = 0;
  bool done = false;

  c->root = -1;
  if (!yaml_parser_initialize(&p))
    return md__nomem(c);
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  while (!done && rc == 0) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      rc = md__yaml_error(c, &p, text, len);
      break;
    }
    done = ev.type == YAML_STREAM_END_EVENT;
    rc = md__event(c, &ev, stack, &depth, &docs);
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  return rc;
}

/* --- Looking at nodes ---------------------------------------------------- */

/* The key after the pair that starts with key k (libyaml always gives a
 * mapping an even number of children; a lone key ends the walk). */
static int md__next_pair(const md__ctx *c, int k) {
  int v = c->nodes[k].next;
  return v >= 0 ? c->nodes[v].next : -1;
}

/* A plain "", "~" or "null": YAML's null, as in "key:" with nothing after. */
static bool md__is_null(const md__node *nd) {
  if (nd->type != MD__SCALAR || !nd->plain)
    return false;
  return nd->len == 0 || strcmp(nd->value, "~") == 0 || strcmp(nd->value, "null") == 0 ||
         strcmp(nd->value, "Null") == 0 || strcmp(nd->value, "NULL") == 0;
}

/* What a node is, for "expected X, got Y". */
static const char *md__kind(const md__node *nd) {
  if (nd->type == MD__MAP)
    return "a mapping";
  if (nd->type == MD__SEQ)
    return "a list";
  if (md__is_null(nd))
    return "nothing";
  return "a scalar";
}

/* The node is a non-empty scalar; what names the expected thing. */
static int md__want_scalar(md__ctx *c, int v, const char *what) {
  const md__node *nd = &c->nodes[v];
  if (nd->type != MD__SCALAR)
    return md__fail(c, nd->line, "expected %s, got %s", what, md__kind(nd));
  if (md__is_null(nd) || nd->len == 0)
    return md__fail(c, nd->line, "missing value (expected %s)", what);
  return 0;
}

/* The node is a mapping (null counts as an empty one when allow_null). */
static int md__want_map(md__ctx *c, int v, bool allow_null) {
  const md__node *nd = &c->nodes[v];
  if (nd->type == MD__MAP || (allow_null && md__is_null(nd)))
    return 0;
  return md__fail(c, nd->line, "expected a mapping, got %s", md__kind(nd));
}

/* The node is a list (null counts as an empty one); *n: how many items. */
static int md__want_seq(md__ctx *c, int v, const char *example, size_t *n) {
  const md__node *nd = &c->nodes[v];
  *n = nd->type == MD__SEQ ? nd->nchild : 0;
  if (nd->type == MD__SEQ || md__is_null(nd))
    return 0;
  return md__fail(c, nd->line, "expected a list, e.g. %s, got %s", example, md__kind(nd));
}

/* Edit distance of two short strings, for "did you mean". */
static size_t md__distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  size_t row[MD__PATH_KEY_MAX + 1];
  if (la > MD__PATH_KEY_MAX || lb > MD__PATH_KEY_MAX)
    return SIZE_MAX;
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* Which of names[] the key node k is. seen[] holds the line each name was
 * first found on (0: not yet), to report duplicates. Returns the index, or
 * an error for non-string, unknown or duplicate keys. */
static int md__key(md__ctx *c, int k, const char *const *names, size_t n, int *seen) {
  const md__node *kn = &c->nodes[k];
  if (kn->type != MD__SCALAR)
    return md__fail(c, kn->line, "keys must be plain strings, got %s", md__kind(kn));
  if (md__is_null(kn))
    return md__fail(c, kn->line, "empty key");
  for (size_t i = 0; i < n; i++) {
    if (strcmp(kn->value, names[i]) != 0)
      continue;
    if (seen[i])
      return md__fail(c, kn->line, "duplicate key '%s' (first at line %d)", names[i], seen[i]);
    seen[i] = kn->line;
    return (int)i;
  }
  char shown[MD__PATH_KEY_MAX * 2 + 8];
  md__clean(kn->value, kn->len, MD__PATH_KEY_MAX, shown, sizeof shown);
  const char *best = NULL;
  size_t bestd = SIZE_MAX;
  for (size_t i = 0; i < n; i++) {
    size_t d = strcasecmp(kn->value, names[i]) == 0 ? 0 : md__distance(kn->value, names[i]);
    if (d < bestd) {
      bestd = d;
      best = names[i];
    }
  }
  for (size_t i = 0; c->pathlen == 0 && c->foreign && c->foreign[i]; i++)
    if (strcmp(kn->value, c->foreign[i]) == 0)
      return md__fail(c, kn->line, "unknown key '%s' (%s)", shown, c->foreign_hint);
  if (best && bestd <= 2 && bestd < strlen(best))
    return md__fail(c, kn->line, "unknown key '%s' (did you mean '%s'?)", shown, best);
  return md__fail(c, kn->line, "unknown key '%s'", shown);
}

/* A required key that did not appear in the mapping at node map. */
static int md__missing(md__ctx *c, int map, const char *key) {
  size_t old = md__push(c, key, strlen(key));
  int rc = md__fail(c, c->nodes[map].line, "missing required key");
  md__pop(c, old);
  return rc;
}

/* Fills the value v of the key keys[which] of a mapping; arg: the struct. */
typedef int md__field_fn(md__ctx *c, int which, int v, void *arg);

#define MD__KEYS_MAX 16 /* keys of the largest mapping of the schema (policy: 10) */

/* Every mapping of the schema is walked the same way: each key must be one of
 * keys[0..n-1] and appear once; its value goes to field() with the key on the
 * path; the first `required` keys must be there. Stops at the first error. */
static int md__each_field(md__ctx *c, int map, const char *const *keys, size_t n, size_t required,
                          md__field_fn *field, void *arg) {
  int seen[MD__KEYS_MAX] = {0}, rc = 0;
  if (n > MD__KEYS_MAX)
    return -EINVAL; /* a schema table larger than seen[]: a programming error */
  for (int k = c->nodes[map].first; rc == 0 && k >= 0; k = md__next_pair(c, k)) {
    int v = c->nodes[k].next, which = md__key(c, k, keys, n, seen);
    if (which < 0)
      return which;
    size_t old = md__push(c, keys[which], strlen(keys[which]));
    rc = field(c, which, v, arg);
    md__pop(c, old);
  }
  for (size_t i = 0; rc == 0 && i < required; i++)
    if (!seen[i])
      rc = md__missing(c, map, keys[i]);
  return rc;
}

/* Fills item i (node it) of a list; arg: the struct. */
typedef int md__item_fn(md__ctx *c, int it, size_t i, void *arg);

/* Every list of the schema is walked the same way: each item goes to item()
 * with "[i]" on the path, until the first error; *count follows the items
 * filled, so the _free functions release exactly those. */
static int md__each_item(md__ctx *c, int v, md__item_fn *item, void *arg, size_t *count) {
  size_t i = 0;
  int rc = 0;
  for (int it = c->nodes[v].first; rc == 0 && it >= 0; it = c->nodes[it].next, i++) {
    size_t old = md__push_index(c, i);
    rc = item(c, it, i, arg);
    md__pop(c, old);
    if (rc == 0)
      *count = i + 1;
  }
  return rc;
}

/* --- Scalar values ------------------------------------------------------- */

/* A copy of s into *out; running out of memory is a message like any error. */
static int md__strdup(md__ctx *c, const char *s, char **out) {
  *out = strdup(s);
  return *out ? 0 : md__nomem(c);
}

/* A copy of a non-empty string value. */
static int md__get_str(md__ctx *c, int v, const char *what, char **out) {
  int rc = md__want_scalar(c, v, what);
  if (rc != 0)
    return rc;
  return md__strdup(c, c->nodes[v].value, out);
}

/* Agent names: short, and safe in a file name or on a command line. */
static bool md__name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 64 || s[0] == '-' || s[0] == '.')
    return false;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
        !(s[i] >= '0' && s[i] <= '9') && !strchr("._-", s[i]))
      return false;
  return true;
}

/* A name of an agent (a key of agents, the agent's own name). */
static int md__get_name(md__ctx *c, int v, char **out) {
  int rc = md__want_scalar(c, v, "a name");
  if (rc != 0)
    return rc;
  if (!md__name_ok(c->nodes[v].value))
    return md__bad(c, v, "not a valid name (1-64 of A-Z a-z 0-9 . _ -)");
  return md__strdup(c, c->nodes[v].value, out);
}

/* A certificate name (tls_name, allowed_controllers): printable ASCII, no
 * spaces, what a CN or DNS SAN holds. */
static int md__get_certname(md__ctx *c, int v, char **out) {
  int rc = md__want_scalar(c, v, "a certificate name");
  if (rc != 0)
    return rc;
  const md__node *nd = &c->nodes[v];
  if (nd->len > 253)
    return md__bad(c, v, "certificate name too long (at most 253 characters)");
  for (size_t i = 0; i < nd->len; i++)
    if ((unsigned char)nd->value[i] <= 0x20 || (unsigned char)nd->value[i] >= 0x7f)
      return md__bad(c, v, "not a valid certificate name (printable ASCII, no spaces)");
  return md__strdup(c, nd->value, out);
}

/* A whole number in [min, max]. Decimal only; "10" quoted is accepted too. */
static int md__get_uint(md__ctx *c, int v, unsigned min, unsigned max, unsigned *out) {
  int rc = md__want_scalar(c, v, "a number");
  if (rc != 0)
    return rc;
  const char *s = c->nodes[v].value;
  size_t n = strlen(s), digits = strspn(s, "0123456789");
  if (s[0] == '-' && n > 1 && strspn(s + 1, "0123456789.") == n - 1)
    return md__bad(c, v, "must not be negative");
  if (digits == 0 || digits != n) {
    char *end = NULL;
    errno = 0;
    double d = strtod(s, &end);
    if (end && *end == '\0' && errno == 0 && isfinite(d) && strspn(s, "0123456789.+eE") == n)
      return md__bad(c, v, "expected a whole number");
    return md__bad(c, v, "expected a number");
  }
  unsigned long long x = 0;
  for (size_t i = 0; i < n && x <= UINT_MAX; i++)
    x = x * 10 + (unsigned)(s[i] - '0');
  if (x < min || x > max)
    return md__bad(c, v, "out of range (%u-%u)", min, max);
  *out = (unsigned)x;
  return 0;
}

/* Seconds as a decimal number: "1", "0.1", "1.5e-1". min_open: the value
 * must be above min (not equal). No hex, no inf or nan. */
static int md__get_secs(md__ctx *c, int v, double min, bool min_open, double max, double *out) {
  int rc = md__want_scalar(c, v, "a number of seconds");
  if (rc != 0)
    return rc;
  const char *s = c->nodes[v].value;
  size_t n = strlen(s);
  char *end = NULL;
  if (strspn(s, "0123456789.+-eE") != n || strspn(s, "+-.eE") == n)
    return md__bad(c, v, "expected a number of seconds");
  errno = 0;
  double d = strtod(s, &end);
  if (!end || *end != '\0' || errno != 0 || !isfinite(d))
    return md__bad(c, v, "expected a number of seconds");
  if (d < 0)
    return md__bad(c, v, "must not be negative");
  if (d < min || (min_open && d <= min))
    return md__bad(c, v, "must be %s %g", min_open ? "greater than" : "at least", min);
  if (d > max)
    return md__bad(c, v, "out of range (at most %g)", max);
  *out = d;
  return 0;
}

/* --- Paths --------------------------------------------------------------- */

/* The user's home directory: $HOME, else the password database. */
static char *md__home(void) {
  const char *h = getenv("HOME");
  if (h && *h)
    return strdup(h);
  struct passwd pw, *res = NULL;
  char buf[4096];
  if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res && res->pw_dir && *res->pw_dir)
    return strdup(res->pw_dir);
  return NULL;
}

/* a + "/" + b, malloc'd. */
static char *md__join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  bool slash = la > 0 && a[la - 1] == '/';
  char *p = malloc(la + lb + 2);
  if (!p)
    return NULL;
  memcpy(p, a, la);
  if (!slash)
    p[la++] = '/';
  memcpy(p + la, b, lb + 1);
  return p;
}

/* A path as written in the file, made usable: "~/x" from the home
 * directory, a relative path from the configuration file's directory. */
static int md__resolve(md__ctx *c, int node, const char *in, char **out) {
  char *p = NULL;
  if (in[0] == '~' && (in[1] == '/' || in[1] == '\0')) {
    char *home = md__home();
    if (!home)
      return md__bad(c, node, "cannot expand '~': $HOME is not set");
    p = md__join(home, in[1] ? in + 2 : "");
    free(home);
  } else if (in[0] == '~') {
    return md__bad(c, node, "'~user' paths are not supported; write the full path");
  } else if (in[0] != '/' && c->base) {
    p = md__join(c->base, in);
  } else {
    p = strdup(in);
  }
  if (!p)
    return md__nomem(c);
  if (strlen(p) >= PATH_MAX) {
    free(p);
    return md__bad(c, node, "path too long");
  }
  *out = p;
  return 0;
}

/* A path value (tls.cert, history, ...). */
static int md__get_path(md__ctx *c, int v, char **out) {
  int rc = md__want_scalar(c, v, "a path");
  if (rc != 0)
    return rc;
  return md__resolve(c, v, c->nodes[v].value, out);
}

/* The directory relative paths are taken from: that of name; when
 * absolute, a relative directory is made absolute now, so the paths stay
 * right if the program changes directory later. NULL when name has no
 * directory and absolute is false (paths stay relative to the cwd). */
static int md__base(const char *name, bool absolute, char **out) {
  *out = NULL;
  const char *slash = strrchr(name, '/');
  char *dir;
  if (!slash) {
    dir = strdup(".");
  } else if (slash == name) {
    dir = strdup("/");
  } else {
    dir = strndup(name, (size_t)(slash - name));
  }
  if (!dir)
    return -ENOMEM;
  if (dir[0] == '/' || (!absolute && slash)) {
    *out = dir;
    return 0;
  }
  if (!absolute) {
    free(dir);
    return 0;
  }
  char *cwd = getcwd(NULL, 0);
  if (!cwd) { /* an unreachable cwd: keep the paths relative */
    if (strcmp(dir, ".") == 0) {
      free(dir);
      return 0;
    }
    *out = dir;
    return 0;
  }
  *out = strcmp(dir, ".") == 0 ? strdup(cwd) : md__join(cwd, dir);
  free(cwd);
  free(dir);
  return *out ? 0 : -ENOMEM;
}

/* --- Addresses ----------------------------------------------------------- */

/* A DNS host name: labels of letters, digits, '-' and '_', 1-63 long, not
 * starting or ending with '-'; 253 characters at most; a final dot is fine. */
static bool md__dns_ok(const char *s) {
  size_t n = strlen(s), label = 0;
  if (n == 0 || n > 254 || (n == 254 && s[n - 1] != '.'))
    return false;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (ch == '.') {
      if (label == 0 || s[i - 1] == '-')
        return false;
      label = 0;
      continue;
    }
    if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') && !(ch >= '0' && ch <= '9') &&
        ch != '-' && ch != '_')
      return false;
    if (ch == '-' && label == 0)
      return false;
    if (++label > 63)
      return false;
  }
  return s[n - 1] != '-';
}

/* A host: a numeric IPv4/IPv6 address (addr set, *numeric true) or a DNS
 * name. Text that looks like an IPv4 address but is not one is refused. */
static int md__check_host(md__ctx *c, int node, const char *host, md_addr *addr, bool *numeric) {
  *numeric = false;
  if (md_addr_parse(host, addr) == 0) {
    *numeric = true;
    return 0;
  }
  if (strspn(host, "0123456789.") == strlen(host))
    return md__bad(c, node, "not a valid IPv4 address");
  if (strchr(host, ':'))
    return md__bad(c, node, "not a valid IPv6 address");
  if (!md__dns_ok(host))
    return md__bad(c, node, "not an IP address or host name");
  return 0;
}

/* A decimal port 1-65535. */
static int md__port(md__ctx *c, int node, const char *s, uint16_t *out) {
  size_t n = strlen(s);
  if (n == 0)
    return md__bad(c, node, "missing port after ':'");
  if (strspn(s, "0123456789") != n)
    return md__bad(c, node, "port is not a number");
  unsigned long v = n > 5 ? 100000 : strtoul(s, NULL, 10);
  if (v == 0 || v > 65535)
    return md__bad(c, node, "port out of range (1-65535)");
  *out = (uint16_t)v;
  return 0;
}

/* "host:port", "[v6]:port", "host", "[v6]" or a bare IPv6 literal, from
 * the string node. host is malloc'd without brackets; port defaults to
 * MD_CONFIG_DEFAULT_PORT (*had_port tells). A numeric host fills addr
 * (with the port) and sets *numeric. */
static int md__hostport(md__ctx *c, int node, char **host, uint16_t *port, bool *had_port,
                        md_addr *addr, bool *numeric) {
  const char *s = c->nodes[node].value;
  const char *h = s, *p = NULL;
  size_t hlen;
  int rc;
  *port = MD_CONFIG_DEFAULT_PORT;
  *had_port = false;
  *numeric = false;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close)
      return md__bad(c, node, "missing ']'");
    h = s + 1;
    hlen = (size_t)(close - h);
    if (close[1] == ':')
      p = close + 2;
    else if (close[1] != '\0')
      return md__bad(c, node, "unexpected text after ']'");
  } else {
    const char *colon = strchr(s, ':');
    if (colon && strchr(colon + 1, ':')) {
      md_addr a;
      if (md_addr_parse(s, &a) != 0)
        return md__bad(c, node,
                       "an IPv6 address with a port needs brackets, e.g. "
                       "\"[2001:db8::1]:7447\"");
      hlen = strlen(s); /* a bare IPv6 literal */
    } else if (colon) {
      hlen = (size_t)(colon - s);
      p = colon + 1;
    } else {
      hlen = strlen(s);
    }
  }
  if (hlen == 0)
    return md__bad(c, node, "missing host");
  if (p) {
    if ((rc = md__port(c, node, p, port)) != 0)
      return rc;
    *had_port = true;
  }
  char *hs = strndup(h, hlen);
  if (!hs)
    return md__nomem(c);
  if (s[0] == '[') {
    if (md_addr_parse(hs, addr) != 0 || md_addr_family(addr) != AF_INET6) {
      free(hs);
      return md__bad(c, node, "not an IPv6 address inside [...]");
    }
    *numeric = true;
  } else if ((rc = md__check_host(c, node, hs, addr, numeric)) != 0) {
    free(hs);
    return rc;
  }
  if (*numeric)
    md_addr_set_port(addr, *port);
  *host = hs;
  return 0;
}

/* An address prefix: "a.b.c.d/n", "v6/n", or a bare address (host prefix). */
static int md__get_cidr(md__ctx *c, int v, md_cidr *out) {
  int rc = md__want_scalar(c, v, "an address prefix");
  if (rc != 0)
    return rc;
  const char *s = c->nodes[v].value;
  const char *slash = strchr(s, '/');
  size_t alen = slash ? (size_t)(slash - s) : strlen(s);
  char text[MD_ADDRSTRLEN];
  md_addr a;
  if (alen == 0 || alen >= sizeof text)
    return md__bad(c, v, "not an address prefix (e.g. \"198.51.100.0/24\")");
  memcpy(text, s, alen);
  text[alen] = '\0';
  if (strchr(text, '%') || md_addr_parse(text, &a) != 0)
    return md__bad(c, v, "not an address prefix (e.g. \"198.51.100.0/24\")");
  int bits = md_addr_family(&a) == AF_INET ? 32 : 128, prefix = bits;
  if (slash) {
    const char *ps = slash + 1;
    size_t n = strlen(ps);
    if (n == 0 || n > 3 || strspn(ps, "0123456789") != n)
      return md__bad(c, v, "prefix length is not a number");
    prefix = atoi(ps);
    if (prefix > bits)
      return md__bad(c, v, "prefix length out of range (0-%d)", bits);
  }
  uint8_t *b =
      md_addr_family(&a) == AF_INET ? (uint8_t *)&a.in4.sin_addr : (uint8_t *)&a.in6.sin6_addr;
  bool hostbits = false;
  for (int i = 0; i < bits / 8; i++) {
    int keep = prefix - i * 8;
    uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    if (b[i] & ~mask) {
      hostbits = true;
      b[i] &= mask;
    }
  }
  if (hostbits) {
    char net[MD_ADDRSTRLEN];
    return md__bad(c, v, "host bits set (did you mean \"%s/%d\"?)",
                   md_addr_str(&a, net, sizeof net), prefix);
  }
  out->addr = a;
  out->prefix = prefix;
  return 0;
}

/* Strict standard base64 of exactly 32 bytes: 43 characters and one '='. */
static int md__b64_sha256(const char *s, uint8_t out[MD_PIN_SHA256_LEN]) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (strlen(s) != 44 || s[43] != '=')
    return -EINVAL;
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0;
  for (int i = 0; i < 43; i++) {
    const char *p = s[i] ? strchr(abc, s[i]) : NULL;
    if (!p)
      return -EINVAL;
    acc = (acc << 6) | (uint32_t)(p - abc);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o < MD_PIN_SHA256_LEN)
        out[o++] = (uint8_t)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (o != MD_PIN_SHA256_LEN || acc != 0) /* the 2 spare bits must be 0 */
    return -EINVAL;
  return 0;
}

/* --- Reading ------------------------------------------------------------- */

/* The whole file, at most MD_CONFIG_MAX_BYTES (also for pipes, where the
 * size is not known in advance). */
static int md__read_file(const char *path, char **text, size_t *len, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
    return -e;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    int e = errno;
    if (e == 0 || S_ISDIR(st.st_mode))
      e = EISDIR;
    close(fd);
    snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
    return -e;
  }
  if (S_ISREG(st.st_mode) && st.st_size > MD_CONFIG_MAX_BYTES) {
    close(fd);
    snprintf(err, errlen, "%s: file too large (%lld bytes; the limit is %d)", path,
             (long long)st.st_size, MD_CONFIG_MAX_BYTES);
    return -EFBIG;
  }
  size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      close(fd);
      snprintf(err, errlen, "%s: out of memory", path);
      return -ENOMEM;
    }
    if (n == cap) {
      if (cap > MD_CONFIG_MAX_BYTES)
        break;
      size_t ncap =
          cap * 2 > (size_t)MD_CONFIG_MAX_BYTES + 1 ? (size_t)MD_CONFIG_MAX_BYTES + 1 : cap * 2;
      char *nb = realloc(buf, ncap);
      if (!nb)
        free(buf);
      buf = nb;
      cap = ncap;
      continue;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int e = errno;
      free(buf);
      close(fd);
      snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
      return -e;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  if (n > MD_CONFIG_MAX_BYTES) {
    free(buf);
    snprintf(err, errlen, "%s: file too large (the limit is %d bytes)", path, MD_CONFIG_MAX_BYTES);
    return -EFBIG;
  }
  *text = buf;
  *len = n;
  return 0;
}

/* --- Common driver ------------------------------------------------------- */

/* Set up c and parse text into a tree whose root is a mapping. */
static int md__begin(md__ctx *c, const char *text, size_t len, const char *name, bool absolute,
                     char *err, size_t errlen) {
  static char dummy[1];
  memset(c, 0, sizeof *c);
  c->file = name ? name : "<config>";
  c->err = err ? err : dummy;
  c->errlen = err ? errlen : 0;
  c->root = -1;
  if (c->errlen > 0)
    c->err[0] = '\0';
  if (!text && len > 0)
    return md__fail_doc(c, 0, "no text");
  if (len > MD_CONFIG_MAX_BYTES)
    return md__fail_doc(c, 0, "file too large (%zu bytes; the limit is %d)", len,
                        MD_CONFIG_MAX_BYTES);
  if (name && md__base(name, absolute, &c->base) != 0)
    return md__nomem(c);
  if (len == 0)
    return md__fail_doc(c, 1, "empty file (expected a mapping of settings)");
  int rc = md__build(c, text ? text : "", len);
  if (rc != 0)
    return rc;
  if (c->root < 0 || md__is_null(&c->nodes[c->root]))
    return md__fail_doc(c, 1, "empty configuration (expected a mapping of settings)");
  if (c->nodes[c->root].type != MD__MAP)
    return md__fail_doc(c, c->nodes[c->root].line,
                        "expected a mapping of settings at the top level, got %s",
                        md__kind(&c->nodes[c->root]));
  return 0;
}

/* Release the tree. */
static void md__end(md__ctx *c) {
  for (int i = 0; i < c->n; i++)
    free(c->nodes[i].value);
  free(c->nodes);
  free(c->base);
  c->nodes = NULL;
  c->base = NULL;
  c->n = c->cap = 0;
}

/* What tells the two programs' files apart, for md__parse and md__load. */
typedef struct md__program {
  size_t size;                        /* of its configuration struct */
  int (*root)(md__ctx *c, void *cfg); /* fills the struct from the tree, path last */
  void (*release)(void *cfg);         /* frees what the struct holds (its _free) */
  const char *const *foreign;         /* top-level keys of the other program's file */
  const char *foreign_hint;           /* what to say when one of them shows up */
} md__program;

/* Both programs parse alike: the tree, then the walk from its root; on error
 * cfg is left zeroed. absolute: make the base directory absolute. */
static int md__parse(const md__program *prog, const char *text, size_t len, const char *name,
                     bool absolute, void *cfg, char *err, size_t errlen) {
  md__ctx c;
  if (!cfg)
    return -EINVAL;
  memset(cfg, 0, prog->size);
  int rc = md__begin(&c, text, len, name, absolute, err, errlen);
  c.foreign = prog->foreign;
  c.foreign_hint = prog->foreign_hint;
  if (rc == 0)
    rc = prog->root(&c, cfg);
  md__end(&c);
  if (rc != 0)
    prog->release(cfg);
  return rc;
}

/* Both programs load alike: read the file, parse it with paths made absolute. */
static int md__load(const md__program *prog, const char *path, void *cfg, char *err,
                    size_t errlen) {
  char *text = NULL, dummy[1];
  size_t len = 0;
  if (!path || !cfg)
    return -EINVAL;
  memset(cfg, 0, prog->size);
  int rc = md__read_file(path, &text, &len, err ? err : dummy, err ? errlen : 0);
  if (rc != 0)
    return rc;
  rc = md__parse(prog, text, len, path, true, cfg, err, errlen);
  free(text);
  return rc;
}

/* --- mtr-agent ----------------------------------------------------------- */

/* One of tls.allowed_controllers. */
static int md__agent_controller(md__ctx *c, int it, size_t i, void *arg) {
  md_agent_config *cfg = arg;
  return md__get_certname(c, it, &cfg->tls.allowed_controllers[i]);
}

/* One value of tls: { cert, key, ca, allowed_controllers } of the agent. */
static int md__agent_tls_field(md__ctx *c, int which, int v, void *arg) {
  md_agent_config *cfg = arg;
  size_t n = 0;
  int rc;
  switch (which) {
  case 0:
    return md__get_path(c, v, &cfg->tls.cert);
  case 1:
    return md__get_path(c, v, &cfg->tls.key);
  case 2:
    return md__get_path(c, v, &cfg->tls.ca);
  default:
    if ((rc = md__want_seq(c, v, "[ops]", &n)) != 0 || n == 0)
      return rc;
    cfg->tls.allowed_controllers = calloc(n, sizeof *cfg->tls.allowed_controllers);
    if (!cfg->tls.allowed_controllers)
      return md__nomem(c);
    return md__each_item(c, v, md__agent_controller, cfg, &cfg->tls.n_allowed_controllers);
  }
}

/* tls: { cert, key, ca, allowed_controllers } of the agent. */
static int md__agent_tls(md__ctx *c, int map, md_agent_config *cfg) {
  static const char *const keys[] = {"cert", "key", "ca", "allowed_controllers"};
  int rc = md__want_map(c, map, false);
  return rc != 0 ? rc : md__each_field(c, map, keys, 4, 3, md__agent_tls_field, cfg);
}

/* One of policy.allow_targets. */
static int md__agent_target(md__ctx *c, int it, size_t i, void *arg) {
  md_agent_config *cfg = arg;
  return md__get_cidr(c, it, &cfg->policy.allow_targets[i]);
}

/* One value of policy. */
static int md__agent_policy_field(md__ctx *c, int which, int v, void *arg) {
  md_agent_config *cfg = arg;
  size_t n = 0;
  int rc;
  switch (which) {
  case 0:
    if ((rc = md__want_seq(c, v, "[\"198.51.100.10/32\"]", &n)) != 0 || n == 0)
      return rc;
    cfg->policy.allow_targets = calloc(n, sizeof *cfg->policy.allow_targets);
    if (!cfg->policy.allow_targets)
      return md__nomem(c);
    return md__each_item(c, v, md__agent_target, cfg, &cfg->policy.n_allow_targets);
  case 1:
    return md__get_uint(c, v, 1, 1024, &cfg->policy.max_concurrent_runs);
  case 2:
    return md__get_uint(c, v, 1, 1000000, &cfg->policy.max_probes_per_second);
  case 3:
    return md__get_secs(c, v, 0, false, 3600, &cfg->policy.min_interval);
  case 4:
    return md__get_uint(c, v, 1, 1000000, &cfg->policy.max_cycles);
  case 5:
    return md__get_uint(c, v, 1, 65535, &cfg->policy.max_psize);
  case 6:
    return md__get_uint(c, v, 1, 255, &cfg->policy.max_ttl);
  case 7:
    return md__get_uint(c, v, 1, 65535, &cfg->policy.max_connections);
  case 8:
    return md__get_secs(c, v, 0, true, 3600, &cfg->policy.handshake_timeout);
  default:
    return md__get_secs(c, v, 0, true, 7 * 86400, &cfg->policy.idle_timeout);
  }
}

/* policy: what controllers may make this agent do. */
static int md__agent_policy(md__ctx *c, int map, md_agent_config *cfg) {
  static const char *const keys[] = {
      "allow_targets", "max_concurrent_runs", "max_probes_per_second",
      "min_interval",  "max_cycles",          "max_psize",
      "max_ttl",       "max_connections",     "handshake_timeout",
      "idle_timeout"};
  int rc = md__want_map(c, map, true);
  return rc != 0 ? rc : md__each_field(c, map, keys, 10, 0, md__agent_policy_field, cfg);
}

/* One listen address: numeric, and not listed twice. */
static int md__agent_listen_item(md__ctx *c, int it, size_t i, void *arg) {
  md_agent_config *cfg = arg;
  md_listen *l = &cfg->listen[i];
  char *host = NULL;
  uint16_t port = 0;
  bool had_port = false, numeric = false;
  int rc;
  if ((rc = md__want_scalar(c, it, "an address:port")) == 0 &&
      (rc = md__hostport(c, it, &host, &port, &had_port, &l->addr, &numeric)) == 0) {
    if (!numeric)
      rc = md__bad(c, it, "a listen address must be a numeric IP address");
    else if (had_port && md_addr_parse_hostport(c->nodes[it].value, &l->addr) != 0)
      rc = md__bad(c, it, "not an address:port");
    for (size_t j = 0; rc == 0 && j < i; j++)
      if (md_addr_equal(&cfg->listen[j].addr, &l->addr) &&
          md_addr_port(&cfg->listen[j].addr) == md_addr_port(&l->addr))
        rc = md__bad(c, it, "listed twice");
    if (rc == 0)
      rc = md__strdup(c, c->nodes[it].value, &l->text);
  }
  free(host);
  return rc;
}

/* listen: ["0.0.0.0:7447", "[::]:7447"]: numeric addresses only. */
static int md__agent_listen(md__ctx *c, int v, md_agent_config *cfg) {
  size_t n = 0;
  int rc = md__want_seq(c, v, "[\"0.0.0.0:7447\", \"[::]:7447\"]", &n);
  if (rc != 0)
    return rc;
  if (n == 0)
    return md__fail(c, c->nodes[v].line, "at least one listen address is required");
  cfg->listen = calloc(n, sizeof *cfg->listen);
  if (!cfg->listen)
    return md__nomem(c);
  return md__each_item(c, v, md__agent_listen_item, cfg, &cfg->n_listen);
}

/* Defaults the file may leave out. */
static void md__agent_defaults(md_agent_config *cfg) {
  cfg->policy.max_concurrent_runs = 4;
  cfg->policy.max_probes_per_second = 100;
  cfg->policy.min_interval = 0.1;
  cfg->policy.max_cycles = 1000;
  cfg->policy.max_psize = 1500;
  cfg->policy.max_ttl = 64;
  cfg->policy.max_connections = 64;
  cfg->policy.handshake_timeout = 10;
  cfg->policy.idle_timeout = 300;
}

/* One value of the top level of the agent's file. */
static int md__agent_root_field(md__ctx *c, int which, int v, void *arg) {
  md_agent_config *cfg = arg;
  switch (which) {
  case 0:
    return md__get_name(c, v, &cfg->name);
  case 1:
    return md__agent_listen(c, v, cfg);
  case 2:
    return md__agent_tls(c, v, cfg);
  case 3:
    return md__agent_policy(c, v, cfg);
  default:
    return md__get_name(c, v, &cfg->user); /* a user name: the same characters */
  }
}

/* The top level of the agent's file (md__program.root). */
static int md__agent_root(md__ctx *c, void *arg) {
  static const char *const keys[] = {"name", "listen", "tls", "policy", "user"};
  md_agent_config *cfg = arg;
  md__agent_defaults(cfg);
  int rc = md__each_field(c, c->root, keys, 5, 3, md__agent_root_field, cfg);
  return rc != 0 ? rc : md__strdup(c, c->file, &cfg->path);
}

/* md_agent_config_free for md__program.release. */
static void md__agent_release(void *cfg) {
  md_agent_config_free(cfg);
}

/* mtrctl's top-level keys, to say so when one shows up in the agent's file. */
static const char *const md__ctl_keys[] = {"agents", "history", "defaults", "timeout", NULL};

/* The agent's file. */
static const md__program md__agent = {sizeof(md_agent_config), md__agent_root, md__agent_release,
                                      md__ctl_keys,
                                      "this looks like mtrctl's configuration, not mtr-agent's"};

/* Text (tests, the fuzzer) into an agent configuration. */
int md_agent_config_parse_string(const char *text, size_t len, const char *name,
                                 md_agent_config *cfg, char *err, size_t errlen) {
  return md__parse(&md__agent, text, len, name, false, cfg, err, errlen);
}

/* The agent's file into an agent configuration. */
int md_agent_config_load(const char *path, md_agent_config *cfg, char *err, size_t errlen) {
  return md__load(&md__agent, path, cfg, err, errlen);
}

/* Everything an agent configuration holds. */
void md_agent_config_free(md_agent_config *cfg) {
  if (!cfg)
    return;
  free(cfg->path);
  free(cfg->name);
  free(cfg->user);
  for (size_t i = 0; i < cfg->n_listen; i++)
    free(cfg->listen[i].text);
  free(cfg->listen);
  free(cfg->tls.cert);
  free(cfg->tls.key);
  free(cfg->tls.ca);
  for (size_t i = 0; i < cfg->tls.n_allowed_controllers; i++)
    free(cfg->tls.allowed_controllers[i]);
  free(cfg->tls.allowed_controllers);
  free(cfg->policy.allow_targets);
  memset(cfg, 0, sizeof *cfg);
}

/* --- mtrctl -------------------------------------------------------------- */

/* One value of tls: { cert, key, ca } of the controller. */
static int md__ctl_tls_field(md__ctx *c, int which, int v, void *arg) {
  md_ctl_config *cfg = arg;
  return md__get_path(c, v,
                      which == 0   ? &cfg->tls.cert
                      : which == 1 ? &cfg->tls.key
                                   : &cfg->tls.ca);
}

/* tls: { cert, key, ca } of the controller. */
static int md__ctl_tls(md__ctx *c, int map, md_ctl_config *cfg) {
  static const char *const keys[] = {"cert", "key", "ca"};
  int rc = md__want_map(c, map, false);
  return rc != 0 ? rc : md__each_field(c, map, keys, 3, 3, md__ctl_tls_field, cfg);
}

/* A host value (probe_address, defaults.reference): an IP address or a DNS
 * name, no port. Brackets around an IPv6 address are accepted. */
static int md__get_host(md__ctx *c, int v, char **out, md_addr *addr, bool *numeric) {
  int rc = md__want_scalar(c, v, "an address or host name");
  if (rc != 0)
    return rc;
  const char *s = c->nodes[v].value;
  size_t n = strlen(s);
  char *h = (s[0] == '[' && n > 2 && s[n - 1] == ']') ? strndup(s + 1, n - 2) : strdup(s);
  if (!h)
    return md__nomem(c);
  const char *colon = strchr(h, ':');
  if (colon && !strchr(colon + 1, ':')) {
    free(h);
    return md__bad(c, v, "expected an address or host name without a port");
  }
  if ((rc = md__check_host(c, v, h, addr, numeric)) != 0) {
    free(h);
    return rc;
  }
  *out = h;
  return 0;
}

/* One value of an agent of the inventory. */
static int md__ctl_agent_field(md__ctx *c, int which, int v, void *arg) {
  md_ctl_agent *a = arg;
  bool had_port = false;
  int rc;
  switch (which) {
  case 0:
    if ((rc = md__get_str(c, v, "host:port", &a->address)) != 0)
      return rc;
    return md__hostport(c, v, &a->host, &a->port, &had_port, &a->addr, &a->has_addr);
  case 1:
    rc = md__get_host(c, v, &a->probe_address, &a->probe_addr, &a->has_probe_addr);
    if (rc == 0 && a->has_probe_addr)
      md_addr_set_port(&a->probe_addr, 0);
    return rc;
  case 2:
    return md__get_certname(c, v, &a->tls_name);
  default:
    if ((rc = md__get_str(c, v, "a base64 SHA-256", &a->pin_sha256)) != 0)
      return rc;
    if (md__b64_sha256(a->pin_sha256, a->pin) != 0)
      return md__bad(c, v,
                     "not a base64 SHA-256 of the agent's public key (44 characters, e.g. "
                     "from `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | "
                     "openssl dgst -sha256 -binary | base64`)");
    a->has_pin = true;
    return 0;
  }
}

/* One agent of the inventory: agents.NAME: { address, ... }. */
static int md__ctl_agent(md__ctx *c, int k, int map, md_ctl_agent *a) {
  static const char *const keys[] = {"address", "probe_address", "tls_name", "pin_sha256"};
  int rc = md__get_name(c, k, &a->name);
  a->line = c->nodes[k].line;
  if (rc == 0 && md__is_null(&c->nodes[map]))
    return md__missing(c, map, "address");
  if (rc == 0)
    rc = md__want_map(c, map, false);
  if (rc == 0)
    rc = md__each_field(c, map, keys, 4, 1, md__ctl_agent_field, a);
  if (rc == 0 && !a->probe_address) {
    if (!(a->probe_address = strdup(a->host)))
      return md__nomem(c);
    a->has_probe_addr = a->has_addr;
    if (a->has_addr) {
      a->probe_addr = a->addr;
      md_addr_set_port(&a->probe_addr, 0);
    }
  }
  if (rc == 0 && !a->tls_name)
    rc = md__strdup(c, a->name, &a->tls_name);
  return rc;
}

/* agents: NAME -> { ... }, kept in file order; at least one. */
static int md__ctl_agents(md__ctx *c, int map, md_ctl_config *cfg) {
  int rc = md__want_map(c, map, true);
  if (rc != 0)
    return rc;
  size_t n = c->nodes[map].type == MD__MAP ? c->nodes[map].nchild / 2 : 0, i = 0;
  if (n == 0)
    return md__fail(c, c->nodes[map].line,
                    "at least one agent is required, e.g. cvm: { address: \"203.0.113.7:7447\" }");
  cfg->agents = calloc(n, sizeof *cfg->agents);
  if (!cfg->agents)
    return md__nomem(c);
  for (int k = c->nodes[map].first; rc == 0 && k >= 0; k = md__next_pair(c, k), i++) {
    int v = c->nodes[k].next;
    const md__node *kn = &c->nodes[k];
    if (kn->type != MD__SCALAR)
      return md__fail(c, kn->line, "keys must be plain strings, got %s", md__kind(kn));
    for (size_t j = 0; j < i; j++)
      if (strcmp(cfg->agents[j].name, kn->value) == 0)
        return md__fail(c, kn->line, "duplicate agent '%s' (first at line %d)", cfg->agents[j].name,
                        cfg->agents[j].line);
    size_t old = md__push(c, kn->value, kn->len);
    cfg->n_agents = i + 1;
    rc = md__ctl_agent(c, k, v, &cfg->agents[i]);
    md__pop(c, old);
  }
  return rc;
}

/* One value of defaults. */
static int md__ctl_defaults_field(md__ctx *c, int which, int v, void *arg) {
  static const char *const protos[] = {"icmp", "udp", "tcp"};
  md_ctl_config *cfg = arg;
  md_addr a;
  bool numeric = false;
  size_t p = 0;
  int rc;
  switch (which) {
  case 0:
    if ((rc = md__want_scalar(c, v, "icmp, udp or tcp")) != 0)
      return rc;
    while (p < 3 && strcasecmp(c->nodes[v].value, protos[p]) != 0)
      p++;
    if (p == 3)
      return md__bad(c, v, "unknown protocol (icmp, udp or tcp)");
    snprintf(cfg->defaults.protocol, sizeof cfg->defaults.protocol, "%s", protos[p]);
    return 0;
  case 1:
    return md__get_uint(c, v, 1, 1000000, &cfg->defaults.cycles);
  case 2:
    return md__get_secs(c, v, 0, true, 3600, &cfg->defaults.interval);
  case 3:
    return md__get_uint(c, v, 1, 65535, &cfg->defaults.psize);
  case 4:
    return md__get_uint(c, v, 1, 255, &cfg->defaults.max_ttl);
  default:
    return md__get_host(c, v, &cfg->defaults.reference, &a, &numeric);
  }
}

/* defaults: what `diagnose` uses when the command line does not say. */
static int md__ctl_defaults(md__ctx *c, int map, md_ctl_config *cfg) {
  static const char *const keys[] = {"protocol", "cycles",  "interval",
                                     "psize",    "max_ttl", "reference"};
  int rc = md__want_map(c, map, true);
  return rc != 0 ? rc : md__each_field(c, map, keys, 6, 0, md__ctl_defaults_field, cfg);
}

/* One value of the top level of the controller's file. */
static int md__ctl_root_field(md__ctx *c, int which, int v, void *arg) {
  md_ctl_config *cfg = arg;
  switch (which) {
  case 0:
    return md__ctl_tls(c, v, cfg);
  case 1:
    return md__ctl_agents(c, v, cfg);
  case 2:
    return md__get_path(c, v, &cfg->history);
  case 3:
    return md__ctl_defaults(c, v, cfg);
  default:
    return md__get_secs(c, v, 0, true, 7 * 86400, &cfg->timeout);
  }
}

/* The top level of the controller's file (md__program.root). */
static int md__ctl_root(md__ctx *c, void *arg) {
  static const char *const keys[] = {"tls", "agents", "history", "defaults", "timeout"};
  md_ctl_config *cfg = arg;
  snprintf(cfg->defaults.protocol, sizeof cfg->defaults.protocol, "icmp");
  cfg->defaults.cycles = 10;
  cfg->defaults.interval = 1.0;
  cfg->defaults.psize = 64;
  cfg->defaults.max_ttl = 30;
  int rc = md__each_field(c, c->root, keys, 5, 2, md__ctl_root_field, cfg);
  if (rc == 0 && !cfg->history) {
    char *home = md__home();
    if (!home) {
      size_t old = md__push(c, "history", 7);
      rc = md__fail(c, c->nodes[c->root].line,
                    "no home directory for the default ~/.local/share/mtrctl/history.db; "
                    "set $HOME or give a path");
      md__pop(c, old);
      return rc;
    }
    cfg->history = md__join(home, ".local/share/mtrctl/history.db");
    free(home);
    if (!cfg->history)
      rc = md__nomem(c);
  }
  return rc != 0 ? rc : md__strdup(c, c->file, &cfg->path);
}

/* md_ctl_config_free for md__program.release. */
static void md__ctl_release(void *cfg) {
  md_ctl_config_free(cfg);
}

/* mtr-agent's top-level keys, to say so when one shows up in the controller's file. */
static const char *const md__agent_keys[] = {"name", "listen", "policy", NULL};

/* The controller's file. */
static const md__program md__ctl = {sizeof(md_ctl_config), md__ctl_root, md__ctl_release,
                                    md__agent_keys,
                                    "this looks like mtr-agent's configuration, not mtrctl's"};

/* Text (tests, the fuzzer) into a controller configuration. */
int md_ctl_config_parse_string(const char *text, size_t len, const char *name, md_ctl_config *cfg,
                               char *err, size_t errlen) {
  return md__parse(&md__ctl, text, len, name, false, cfg, err, errlen);
}

/* The controller's file into a controller configuration. */
int md_ctl_config_load(const char *path, md_ctl_config *cfg, char *err, size_t errlen) {
  return md__load(&md__ctl, path, cfg, err, errlen);
}

/* Everything a controller configuration holds. */
void md_ctl_config_free(md_ctl_config *cfg) {
  if (!cfg)
    return;
  free(cfg->path);
  free(cfg->tls.cert);
  free(cfg->tls.key);
  free(cfg->tls.ca);
  free(cfg->history);
  for (size_t i = 0; i < cfg->n_agents; i++) {
    md_ctl_agent *a = &cfg->agents[i];
    free(a->name);
    free(a->address);
    free(a->host);
    free(a->probe_address);
    free(a->tls_name);
    free(a->pin_sha256);
  }
  free(cfg->agents);
  free(cfg->defaults.reference);
  memset(cfg, 0, sizeof *cfg);
}

/* Inventory lookup by the name used on the command line. */
const md_ctl_agent *md_ctl_config_find_agent(const md_ctl_config *cfg, const char *name) {
  if (!cfg || !name)
    return NULL;
  for (size_t i = 0; i < cfg->n_agents; i++)
    if (strcmp(cfg->agents[i].name, name) == 0)
      return &cfg->agents[i];
  return NULL;
}

/* CONTRACT's search order for mtrctl's file. */
int md_ctl_config_default_path(char *buf, size_t len) {
  const char *env = getenv("MTRCTL_CONFIG");
  int n;
  if (!buf || len == 0)
    return -EINVAL;
  if (env && *env) {
    n = snprintf(buf, len, "%s", env);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
  }
  char *home = md__home();
  if (home) {
    n = snprintf(buf, len, "%s%s.config/mtrctl/config.yaml", home,
                 home[strlen(home) - 1] == '/' ? "" : "/");
    free(home);
    if (n < 0 || (size_t)n >= len)
      return -ENAMETOOLONG;
    if (access(buf, F_OK) == 0)
      return 0;
  }
  if (access("/etc/mtrctl/config.yaml", F_OK) == 0 || !home) {
    n = snprintf(buf, len, "%s", "/etc/mtrctl/config.yaml");
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
  }
  return 0; /* buf still holds the ~ one */
}
