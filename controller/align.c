/* align: pairing the hops of the two directions (align.h, docs/verdict.md
 * "Alignment"). Every responder of a hop counts (ECMP), not only the first;
 * the pairs are the best rule found for each (forward hop, reverse hop). */
#include "align.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "verdict.h"

/* Strength of a match; the order is the precedence. */
enum { HOW_NONE = 0, HOW_GATEWAY, HOW_LINK_MATE, HOW_SAME_IP };

/* The contract's "how" words. */
static const char *how_name(int how) {
  switch (how) {
  case HOW_SAME_IP:
    return "same_ip";
  case HOW_LINK_MATE:
    return "link_mate";
  case HOW_GATEWAY:
    return "gateway";
  }
  return "";
}

/* Point-to-point links are /30 (/126) or /31 (/127): the two ends share all
 * but the last one bit, or all but the last two with host parts 1 and 2
 * (the network and broadcast addresses of a /30 are never an interface). */
bool md_align_link_mates(const md_addr *a, const md_addr *b) {
  if (!a || !b)
    return false;
  size_t la, lb;
  const uint8_t *ba = md_addr_bytes(a, &la);
  const uint8_t *bb = md_addr_bytes(b, &lb);
  if (!ba || !bb || la != lb || la == 0 || md_addr_family(a) != md_addr_family(b) ||
      md_addr_equal(a, b))
    return false;
  int bits = (int)la * 8;
  if (md_addr_same_prefix(a, b, bits - 1))
    return true;
  if (!md_addr_same_prefix(a, b, bits - 2))
    return false;
  unsigned x = ba[la - 1] & 3u, y = bb[lb - 1] & 3u;
  return (x == 1 && y == 2) || (x == 2 && y == 1);
}

/* A hop that answered (silent hops are unknown: never paired, never listed). */
static bool answered(const md_hop *h) {
  return h->n_hosts > 0 && h->st.recv > 0;
}

/* Any responder of the hop has this address. */
static bool hop_has(const md_hop *h, const md_addr *a) {
  return a && md_hop_find_host(h, a) != NULL;
}

/* Any responder of the hop is a link mate of this address. */
static bool hop_mate_of(const md_hop *h, const md_addr *a) {
  for (int k = 0; a && k < h->n_hosts; k++)
    if (md_align_link_mates(&h->hosts[k].addr, a))
      return true;
  return false;
}

/* The best rule between two hops over all their responders. */
static int hop_match(const md_hop *f, const md_hop *r) {
  int best = HOW_NONE;
  for (int i = 0; i < f->n_hosts; i++)
    for (int j = 0; j < r->n_hosts; j++) {
      if (md_addr_equal(&f->hosts[i].addr, &r->hosts[j].addr))
        return HOW_SAME_IP;
      if (md_align_link_mates(&f->hosts[i].addr, &r->hosts[j].addr))
        best = HOW_LINK_MATE;
    }
  return best;
}

/* One direction's hops as the alignment sees them. */
typedef struct side {
  const md_path *p;
  int dest_idx;
  bool endpoint[MD_MAX_TTL + 1]; /* an agent, not a router */
  bool unknown[MD_MAX_TTL + 1];  /* a gateway whose counterpart is silent or missing */
  bool paired[MD_MAX_TTL + 1];
} side;

/* The agents: each path's destination hop, and any hop answering with
 * either agent's address. */
static void side_init(side *s, const md_path *p, const md_addr *a, const md_addr *b) {
  memset(s, 0, sizeof *s);
  s->p = p;
  s->dest_idx = md_verdict_destination_idx(p);
  for (int i = 0; i < p->n_hops && i <= MD_MAX_TTL; i++)
    s->endpoint[i] = i == s->dest_idx || hop_has(&p->hops[i], a) || hop_has(&p->hops[i], b);
}

/* A router hop: answered and not an agent. */
static bool side_router(const side *s, int i) {
  return answered(&s->p->hops[i]) && !s->endpoint[i];
}

/* The gateway rule for one side: its hops that are link mates of `far`
 * (the other path's target, i.e. this path's source) pair with the other
 * path's last hop before its destination when that hop is a router. */
static void gateway_rule(side *s, const md_addr *far, side *o, uint8_t *how, int stride,
                         bool s_is_fwd) {
  if (!far)
    return;
  int g = o->dest_idx - 1; /* dest_idx -1 (not reached) or 0 (no hop before) gives < 0 */
  for (int i = 0; i < s->p->n_hops; i++) {
    if (!side_router(s, i) || !hop_mate_of(&s->p->hops[i], far))
      continue;
    if (g < 0 || !side_router(o, g)) {
      s->unknown[i] = true;
      continue;
    }
    uint8_t *cell = s_is_fwd ? &how[i * stride + g] : &how[g * stride + i];
    if (*cell == HOW_NONE)
      *cell = HOW_GATEWAY;
  }
}

/* A hop that has a same_ip partner is identified: its weaker pairs are
 * dropped. Routers answering from one address (a loopback) answer from
 * neighbouring addresses of one block, which look like link mates. */
static void keep_same_ip_only(uint8_t *how, int nf, int nr) {
  bool row[MD_MAX_TTL + 1] = {false}, col[MD_MAX_TTL + 1] = {false};
  for (int i = 0; i < nf; i++)
    for (int j = 0; j < nr; j++)
      if (how[i * nr + j] == HOW_SAME_IP)
        row[i] = col[j] = true;
  for (int i = 0; i < nf; i++)
    for (int j = 0; j < nr; j++)
      if ((row[i] || col[j]) && how[i * nr + j] != HOW_SAME_IP)
        how[i * nr + j] = HOW_NONE;
}

/* Collect the TTLs of one side's unpaired router hops. */
static int only_list(const side *s, int **out) {
  int n = 0;
  for (int i = 0; i < s->p->n_hops; i++)
    if (side_router(s, i) && !s->paired[i] && !s->unknown[i])
      n++;
  *out = NULL;
  if (n == 0)
    return 0;
  if (!(*out = malloc((size_t)n * sizeof **out)))
    return -ENOMEM;
  n = 0;
  for (int i = 0; i < s->p->n_hops; i++)
    if (side_router(s, i) && !s->paired[i] && !s->unknown[i])
      (*out)[n++] = s->p->hops[i].ttl;
  return n;
}

/* The alignment: every (forward, reverse) router pair a rule matches,
 * sorted by forward TTL then reverse TTL; the unpaired routers of each
 * side; asymmetric when there is any. */
int md_align(const md_path *fwd, const md_path *rev, md_alignment *al) {
  if (!fwd || !rev || !al)
    return -EINVAL;
  memset(al, 0, sizeof *al);
  int nf = fwd->n_hops, nr = rev->n_hops;
  if (nf > MD_MAX_TTL + 1 || nr > MD_MAX_TTL + 1)
    return -EINVAL;
  md_addr a, b; /* A = the reverse trace's target, B = the forward trace's */
  const md_addr *pa = rev->target && md_addr_parse(rev->target, &a) == 0 ? &a : NULL;
  const md_addr *pb = fwd->target && md_addr_parse(fwd->target, &b) == 0 ? &b : NULL;

  side *f = malloc(sizeof *f), *r = malloc(sizeof *r);
  uint8_t *how = calloc((size_t)(nf > 0 ? nf : 1) * (size_t)(nr > 0 ? nr : 1), 1);
  int rc = -ENOMEM;
  if (!f || !r || !how)
    goto out;
  side_init(f, fwd, pa, pb);
  side_init(r, rev, pa, pb);
  for (int i = 0; i < nf; i++)
    for (int j = 0; j < nr && side_router(f, i); j++)
      if (side_router(r, j))
        how[i * nr + j] = (uint8_t)hop_match(&fwd->hops[i], &rev->hops[j]);
  gateway_rule(f, pa, r, how, nr, true);
  gateway_rule(r, pb, f, how, nr, false);
  keep_same_ip_only(how, nf, nr);

  int n = 0;
  for (int i = 0; i < nf * nr; i++)
    n += how[i] != HOW_NONE;
  if (n > 0 && !(al->shared = calloc((size_t)n, sizeof *al->shared)))
    goto out;
  for (int i = 0; i < nf; i++)
    for (int j = 0; j < nr; j++) {
      int w = how[i * nr + j];
      if (w == HOW_NONE)
        continue;
      md_align_pair *pr = &al->shared[al->n_shared++];
      pr->forward_ttl = fwd->hops[i].ttl;
      pr->reverse_ttl = rev->hops[j].ttl;
      strncpy(pr->how, how_name(w), sizeof pr->how - 1);
      f->paired[i] = r->paired[j] = true;
    }
  int k = only_list(f, &al->forward_only_ttls);
  if (k < 0)
    goto out;
  al->n_forward_only = k;
  if ((k = only_list(r, &al->reverse_only_ttls)) < 0)
    goto out;
  al->n_reverse_only = k;
  al->asymmetric = al->n_forward_only > 0 || al->n_reverse_only > 0;
  rc = 0;
out:
  free(f);
  free(r);
  free(how);
  if (rc != 0)
    md_alignment_clear(al);
  return rc;
}

/* Frees the three lists and zeroes the alignment. */
void md_alignment_clear(md_alignment *al) {
  if (!al)
    return;
  free(al->shared);
  free(al->forward_only_ttls);
  free(al->reverse_only_ttls);
  memset(al, 0, sizeof *al);
}

/* Lookup for the diagnosis: is this exact pair in the alignment. */
const md_align_pair *md_alignment_find(const md_alignment *al, int forward_ttl, int reverse_ttl) {
  for (int i = 0; al && i < al->n_shared; i++)
    if (al->shared[i].forward_ttl == forward_ttl && al->shared[i].reverse_ttl == reverse_ttl)
      return &al->shared[i];
  return NULL;
}
