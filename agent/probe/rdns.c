/* rdns: reverse DNS for hop addresses, off the probe path.
 *
 * Lookups run in libuv's thread pool (uv_getnameinfo), so a slow or dead DNS
 * server never delays a probe or a reply. Each address is asked once per
 * trace; its answer is kept, so a responder that shows up at another TTL
 * after the answer came gets the name too. When the trace goes away first, its lookups are
 * detached: their answers are dropped and their memory freed when they come back.
 */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define RDNS_MAX 256 /* distinct addresses looked up per trace */

typedef struct rdns_req {
  uv_getnameinfo_t req;
  md__rdns *owner; /* NULL once detached */
  md_addr addr;
} rdns_req;

struct md__rdns {
  md_trace *trace;
  int pending;
  int n_asked;
  md_addr asked[RDNS_MAX];
  char *names[RDNS_MAX]; /* the answer for asked[i]; NULL until (unless) it came */
  bool released;
};

/* The state and the names it kept. */
static void rdns_free(md__rdns *d) {
  for (int i = 0; i < d->n_asked; i++)
    free(d->names[i]);
  free(d);
}

/* The index of a in asked[], or -1. */
static int asked_at(const md__rdns *d, const md_addr *a) {
  for (int i = 0; i < d->n_asked; i++)
    if (md_addr_equal(&d->asked[i], a))
      return i;
  return -1;
}

md__rdns *md__rdns_new(md_trace *t) {
  md__rdns *d = calloc(1, sizeof *d);
  if (d)
    d->trace = t;
  return d;
}

int md__rdns_pending(const md__rdns *d) {
  return d->pending;
}

/* Give the name to every responder with this address, at every hop. */
static void apply_name(md_path *p, const md_addr *a, const char *name) {
  for (int i = 0; i < p->n_hops; i++) {
    md_hop *h = &p->hops[i];
    for (int j = 0; j < h->n_hosts; j++) {
      if (!h->hosts[j].hostname && md_addr_equal(&h->hosts[j].addr, a))
        h->hosts[j].hostname = strdup(name);
    }
  }
}

static void on_name(uv_getnameinfo_t *req, int status, const char *host, const char *service) {
  (void)service;
  rdns_req *r = (rdns_req *)req;
  md__rdns *d = r->owner;
  if (d) {
    d->pending--;
    int i = asked_at(d, &r->addr);
    if (status == 0 && host && host[0] && i >= 0 && !d->names[i])
      d->names[i] = strdup(host);
    if (status == 0 && host && host[0] && d->trace)
      apply_name(d->trace->path, &r->addr, host);
    if (d->released && d->pending == 0)
      rdns_free(d);
  }
  free(r);
}

void md__rdns_lookup(md__rdns *d, const md_addr *a) {
  int at = asked_at(d, a);
  if (at >= 0) { /* asked before: name this new responder now if the answer is in */
    if (d->names[at] && d->trace)
      apply_name(d->trace->path, a, d->names[at]);
    return;
  }
  if (d->n_asked == RDNS_MAX)
    return;
  d->asked[d->n_asked++] = *a;
  rdns_req *r = calloc(1, sizeof *r);
  if (!r)
    return;
  r->owner = d;
  r->addr = *a;
  if (uv_getnameinfo(d->trace->prober->loop, &r->req, on_name, &r->addr.sa, NI_NAMEREQD) != 0) {
    free(r);
    return;
  }
  d->pending++;
}

/* The trace is going away. Lookups still running keep the state alive until
 * they return, but no longer touch the trace. */
void md__rdns_release(md__rdns *d) {
  d->released = true;
  if (d->pending == 0) {
    rdns_free(d);
    return;
  }
  /* answers must not write into a freed path: point them at nothing */
  d->trace = NULL;
}
