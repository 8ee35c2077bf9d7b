/* md_path: one traced path (the PATH object of the report contract):
 * per TTL the responders with their counts and MPLS stacks, and the
 * statistics. Filled by the probe engine; read by renderers and the
 * controller. */
#ifndef MD_PATH_H
#define MD_PATH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "md_addr.h"
#include "md_stats.h"

#define MD_MAX_TTL 255
#define MD_MAX_MPLS 8  /* labels kept per responder */
#define MD_MAX_HOSTS 16 /* distinct responders kept per TTL (ECMP) */

typedef struct md_mpls {
  uint32_t label; /* 20 bits */
  uint8_t tc, s, ttl;
} md_mpls;

typedef struct md_host {
  md_addr addr;
  char *hostname; /* NULL until (and unless) reverse DNS answers */
  uint32_t count; /* replies from this responder */
  int n_mpls;
  md_mpls mpls[MD_MAX_MPLS];
} md_host;

typedef struct md_hop {
  int ttl;
  int n_hosts;
  md_host *hosts; /* n_hosts entries, first responder first */
  md_stats st;
} md_hop;

typedef struct md_path {
  char *source;      /* source agent name (or host name for a local trace) */
  char *target;      /* numeric target address */
  char *target_name; /* what the user typed / the agent name */
  int64_t started_at_ns, finished_at_ns; /* realtime */
  bool complete;     /* all cycles ran */
  bool reached;      /* the destination answered at least once */
  int first_ttl;
  int n_hops;        /* hops[0] is TTL first_ttl */
  md_hop *hops;
} md_path;

md_path *md_path_new(const char *source, const char *target, const char *target_name, int first_ttl);
void md_path_free(md_path *p);
/* The hop for a TTL, growing the table as needed (NULL on OOM). */
md_hop *md_path_hop(md_path *p, int ttl);
/* Record a responder at a hop (count + 1); adds it if new. Returns it. */
md_host *md_hop_add_host(md_hop *h, const md_addr *from, const md_mpls *mpls, int n_mpls);
/* Trim hops after `last_ttl` (beyond the destination or max-unknown). */
void md_path_truncate(md_path *p, int last_ttl);

/* Renderers (md_path_render.c). */
/* mtr's --report layout: the "Start:" line, the "HOST:" header, one line per
 * hop and one continuation line per extra responder and MPLS label. */
void md_path_render_report(const md_path *p, FILE *out, const char *local_host, bool show_mpls);
/* The PATH object of CONTRACT.md as a jansson object (json_t *), caller decrefs. */
struct json_t;
struct json_t *md_path_to_json(const md_path *p);
/* And back (for stored reports); NULL and a message in err on bad input. */
md_path *md_path_from_json(const struct json_t *j, char *err, size_t errlen);

#endif
