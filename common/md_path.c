/* md_path: the model of one traced path. Hops are contiguous from
 * first_ttl, created on demand; each hop keeps its responders (several
 * under ECMP) in the order they first answered, with their own reply
 * counts and their latest MPLS label stacks. */
#include "md_path.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* strdup that keeps NULL as NULL; *ok is cleared when memory runs out. */
static char *dup_or_null(const char *s, bool *ok) {
  if (!s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    *ok = false;
  return d;
}

/* A new, empty path; the strings are copied (each may be NULL). NULL on
 * OOM or when first_ttl is outside 1..MD_MAX_TTL. */
md_path *md_path_new(const char *source, const char *target, const char *target_name,
                     int first_ttl) {
  if (first_ttl < 1 || first_ttl > MD_MAX_TTL)
    return NULL;
  md_path *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  bool ok = true;
  p->source = dup_or_null(source, &ok);
  p->target = dup_or_null(target, &ok);
  p->target_name = dup_or_null(target_name, &ok);
  p->first_ttl = first_ttl;
  if (!ok) {
    md_path_free(p);
    return NULL;
  }
  return p;
}

/* The responders' hostnames belong to them; the host table to the hop. */
static void hop_clear(md_hop *h) {
  for (int i = 0; i < h->n_hosts; i++)
    free(h->hosts[i].hostname);
  free(h->hosts);
  h->hosts = NULL;
  h->n_hosts = 0;
}

/* Everything the path owns, then the path. NULL is fine. */
void md_path_free(md_path *p) {
  if (!p)
    return;
  for (int i = 0; i < p->n_hops; i++)
    hop_clear(&p->hops[i]);
  free(p->hops);
  free(p->source);
  free(p->target);
  free(p->target_name);
  free(p);
}

/* The hop for a TTL, growing the table (and creating the hops in between,
 * silent so far) when ttl is past the end. NULL for a TTL outside
 * first_ttl..MD_MAX_TTL, or on OOM. Growing moves the table: a pointer to
 * a hop is good until the next call that may grow it. */
md_hop *md_path_hop(md_path *p, int ttl) {
  if (!p || ttl < p->first_ttl || ttl > MD_MAX_TTL)
    return NULL;
  int idx = ttl - p->first_ttl;
  if (idx >= p->n_hops) {
    md_hop *hops = realloc(p->hops, (size_t)(idx + 1) * sizeof *hops);
    if (!hops)
      return NULL;
    for (int i = p->n_hops; i <= idx; i++) {
      memset(&hops[i], 0, sizeof hops[i]);
      hops[i].ttl = p->first_ttl + i;
      md_stats_init(&hops[i].st);
    }
    p->hops = hops;
    p->n_hops = idx + 1;
  }
  return &p->hops[idx];
}

/* Store a label stack (clamped to MD_MAX_MPLS; NULL or n <= 0 is none). */
static void host_set_mpls(md_host *host, const md_mpls *mpls, int n_mpls) {
  if (!mpls || n_mpls < 0)
    n_mpls = 0;
  if (n_mpls > MD_MAX_MPLS)
    n_mpls = MD_MAX_MPLS;
  if (n_mpls > 0)
    memcpy(host->mpls, mpls, (size_t)n_mpls * sizeof *mpls);
  host->n_mpls = n_mpls;
}

/* One reply at this hop came from `from`: its count goes up by one, or it
 * is added (after the responders already seen). Its MPLS stack becomes the
 * one this reply carried, which may be none. NULL when the hop already has
 * MD_MAX_HOSTS responders and this is another, or on OOM; the reply still
 * counts in the hop's statistics, which the caller keeps. */
md_host *md_hop_add_host(md_hop *h, const md_addr *from, const md_mpls *mpls, int n_mpls) {
  if (!h || !from)
    return NULL;
  for (int i = 0; i < h->n_hosts; i++) {
    md_host *host = &h->hosts[i];
    if (md_addr_equal(&host->addr, from)) {
      host->count++;
      host_set_mpls(host, mpls, n_mpls);
      return host;
    }
  }
  if (h->n_hosts >= MD_MAX_HOSTS)
    return NULL;
  md_host *hosts = realloc(h->hosts, (size_t)(h->n_hosts + 1) * sizeof *hosts);
  if (!hosts)
    return NULL;
  h->hosts = hosts;
  md_host *host = &hosts[h->n_hosts++];
  memset(host, 0, sizeof *host);
  host->addr = *from;
  md_addr_set_port(&host->addr, 0);
  host->count = 1;
  host_set_mpls(host, mpls, n_mpls);
  return host;
}

/* The name reverse DNS found (a copy; NULL clears it). 0 or -ENOMEM. */
int md_host_set_hostname(md_host *host, const char *name) {
  char *copy = NULL;
  if (name && !(copy = strdup(name)))
    return -ENOMEM;
  free(host->hostname);
  host->hostname = copy;
  return 0;
}

/* The responder at a hop with this address, or NULL. */
md_host *md_hop_find_host(const md_hop *h, const md_addr *a) {
  if (!h || !a)
    return NULL;
  for (int i = 0; i < h->n_hosts; i++)
    if (md_addr_equal(&h->hosts[i].addr, a))
      return &h->hosts[i];
  return NULL;
}

/* Drop the hops after last_ttl: probes past the destination answer as the
 * destination, and a run of silent hops at the end says nothing. A
 * last_ttl below first_ttl leaves no hops. */
void md_path_truncate(md_path *p, int last_ttl) {
  if (!p)
    return;
  int keep = last_ttl - p->first_ttl + 1;
  if (keep < 0)
    keep = 0;
  if (keep >= p->n_hops)
    return;
  for (int i = keep; i < p->n_hops; i++)
    hop_clear(&p->hops[i]);
  p->n_hops = keep;
  if (keep == 0) {
    free(p->hops);
    p->hops = NULL;
    return;
  }
  md_hop *hops = realloc(p->hops, (size_t)keep * sizeof *hops);
  if (hops)
    p->hops = hops; /* else the larger block stays; harmless */
}

/* The hop at a TTL if the path has it (never grows the table). */
const md_hop *md_path_hop_at(const md_path *p, int ttl) {
  if (!p || ttl < p->first_ttl || ttl >= p->first_ttl + p->n_hops)
    return NULL;
  return &p->hops[ttl - p->first_ttl];
}
