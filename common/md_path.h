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
/* The hop at a TTL if the path has it; never grows the table. */
const md_hop *md_path_hop_at(const md_path *p, int ttl);
/* The responder with this address at a hop, or NULL. */
md_host *md_hop_find_host(const md_hop *h, const md_addr *a);
/* Set (a copy of) the reverse-DNS name; NULL clears it. 0 or -ENOMEM. */
int md_host_set_hostname(md_host *host, const char *name);

/* Renderers (md_path_render.c). */
/* mtr's --report layout: the "Start:" line, the "HOST:" header, one line per
 * hop and one continuation line per extra responder and MPLS label. */
void md_path_render_report(const md_path *p, FILE *out, const char *local_host, bool show_mpls);
/* The same with mtr's other report options. md_path_render_report() is
 * this with MD_REPORT_MPLS when show_mpls. local_host NULL: p->source.
 * Checked against mtr 0.95 on a lab; the quirks kept and the two places we
 * differ (hop line responder, MPLS lines) are listed in md_path_render.c. */
enum {
  MD_REPORT_MPLS = 1 << 0,     /* -e: "[MPLS: Lbl L TC t S s TTL n]" under each responder */
  MD_REPORT_WIDE = 1 << 1,     /* -w: host column as wide as the longest hop-line name */
  MD_REPORT_SHOW_IPS = 1 << 2, /* -b: "hostname (ip)" where a hostname is known */
};
void md_path_render_report_ex(const md_path *p, FILE *out, const char *local_host,
                              unsigned flags);

/* mtr's --split (-p) layout, for programs that read a trace as it runs.
 * A hop's line is "TTL NAME LOSS RCV SNT BEST AVG WORST": NAME the hostname
 * (else the IP) of the hop's first responder, LOSS the loss in thousandths
 * of a percent (25% is 25000), BEST/AVG/WORST whole milliseconds
 * (truncated), all integers, as mtr prints them; a hop with no responder is
 * "TTL ???". md_path_split_line() writes it without the TTL and newline
 * (snprintf's return); md_path_render_split() prints one whole line.
 * mtr prints, at every update, only the lines that changed since the last
 * one, and "-N" when line N and the ones after it are gone; md_split does
 * that bookkeeping: md_split_update() after each change to the path. */
int md_path_split_line(const md_path *p, int ttl, char *buf, size_t len);
void md_path_render_split(const md_path *p, int ttl, FILE *out);
typedef struct md_split md_split;
md_split *md_split_new(void);
void md_split_update(md_split *s, const md_path *p, FILE *out);
void md_split_free(md_split *s);

/* The PATH object of CONTRACT.md as a jansson object (json_t *), caller decrefs.
 * Times in ms rounded to the microsecond, loss_pct to 0.001; started_at and
 * finished_at null while unset (0); "verdict": null (the controller's to
 * fill). NULL on OOM. */
struct json_t;
struct json_t *md_path_to_json(const md_path *p);
/* And back (for stored reports); NULL and a message in err on bad input,
 * naming the field ("hops[2].hosts[0].ip: not an IP address"). Every
 * field above is required; "verdict" and unknown fields are ignored. */
md_path *md_path_from_json(const struct json_t *j, char *err, size_t errlen);

#endif
