/* localise: the joint two-way model (localise.h; the model, its assumptions
 * and every constant are in docs/localisation.md). */
#include "localise.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align.h"
#include "verdict.h"

#define MAXPOS (MD_MAX_TTL + 2) /* chain positions: the source, every TTL */
#define GRID 200                /* loss share grid step 1/GRID, then refined */
#define MAX_CONTENDERS 8        /* the planner separates at most this many */
#define MAX_OBS_LINES 10        /* evidence lines quoting observations */
#define UNEXPLAINED_LL 6.0      /* an observation this far below its own fit is unexplained */

/* The background loss share every model fits (a grid from MD_LOCALISE_BG_LOSS to
 * MD_LOCALISE_BG_MAX): loss spread evenly over every round trip is nobody's fault. */
static const double BG[] = {MD_LOCALISE_BG_LOSS, 0.0075, 0.01, 0.015, 0.02, MD_LOCALISE_BG_MAX};
#define NBG ((int)(sizeof BG / sizeof BG[0]))

/* How a packet's way meets a candidate. */
enum { X_NO = 0, X_YES = 1, X_MAYBE = 2 };

enum { OBS_HOP = 0, OBS_ONEWAY, OBS_FOLLOW };

/* One answering hop of a trace (position 0 is the source agent). */
typedef struct pos {
  int ttl;
  char ip[MD_ADDRSTRLEN]; /* first responder; the agents' addresses at the ends */
  int n_addrs;
  md_addr *addrs; /* every responder (ECMP) */
  uint32_t sent, recv;
  double avg_ms, se_ms, best_ms;
  int n_silent_before; /* hops between the previous position and this one that never answered */
  int obs;             /* its trace observation; -1 at position 0 */
} pos;

/* One trace as a chain of answering hops, with its RTT floors. */
typedef struct chain {
  md_dir dir;
  int n; /* positions 0..n; n is the destination agent */
  pos p[MAXPOS];
  int mate[MAXPOS]; /* the other chain's position of the same router, -1 none */
  double fl[MAXPOS], phi[MAXPOS], sig[MAXPOS]; /* floor, its step, the step's spread */
  int fl_at[MAXPOS];                           /* the position the floor comes from */
  double base_step; /* the typical step, taken off phi (paths of 3 positions or more) */
} chain;

/* A router or agent: its position on each chain, -1 when not on it. */
typedef struct node {
  int fi, ri;
} node;

/* One observation: a trace hop, a one-way stream or a follow-up ping. */
typedef struct obs {
  int type;
  md_dir dir;         /* HOP: the trace; ONEWAY: the stream's direction */
  md_agent_side from; /* HOP, FOLLOW: the sender */
  int pos;            /* HOP: its chain position */
  bool rl;            /* a router answers: may be rate limited */
  uint32_t sent, recv;
  char label[MD_ADDRSTRLEN + 80];
  uint8_t *go, *back; /* per candidate: the probe's way, the reply's way */
} obs;

/* What the best state of one observation under one candidate is. */
typedef struct ostate {
  bool crossed, rl, alt;
  double ll, pred; /* log-likelihood, predicted loss share */
} ostate;

/* A latency cut: the first position of a chain whose round trip carries the delay. */
typedef struct cutopt {
  int cut; /* n + 1: none */
  bool alt, mono;
} cutopt;

struct md_localise {
  chain f, r; /* forward: A = 0, B = f.n; reverse: B = 0, A = r.n */
  char a_name[64], b_name[64];
  char a_ip[MD_ADDRSTRLEN], b_ip[MD_ADDRSTRLEN];
  md_addr a_addr, b_addr;
  bool have_a_addr, have_b_addr;
  bool assumed_gw[2]; /* the access-link assumption paired A's (B's) gateway */
  int nc;             /* candidates: f.n forward links, r.n reverse links, 2 hosts */
  obs *o;
  int n_obs, cap_obs;
  bool have_owl;               /* one-way loss in the observations */
  bool have_owd;               /* one-way delays of both directions */
  double ow_fwd_ms, ow_rev_ms; /* their averages */
  double ow_z, ow_sz;          /* forward minus reverse delay, its spread */
  double *l_base;              /* NBG x n_obs: each observation with no fault, per background */
  double *l_sat; /* n_obs: each observation at its own loss share (rate limiting's fit) */
  double l_null, l_null_bg, *l_est, *l_logl, *l_bg;
  double d_null, *d_est, *d_logl;
  cutopt *d_cut; /* 2 per candidate: forward, reverse */
};

/* --- Strings ------------------------------------------------------------------ */

/* snprintf that may truncate, without the compiler's truncation warnings. */
__attribute__((format(printf, 3, 4))) static void sfmt(char *buf, size_t len, const char *fmt,
                                                       ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

/* A figure for printing: no "-0.0". */
static double nz(double x) {
  return fabs(x) < 0.05 ? 0.0 : x;
}

/* A formatted, malloc'd string (NULL on OOM). */
__attribute__((format(printf, 1, 2))) static char *fmt_dup(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  return n < 0 ? NULL : s;
}

/* Append a malloc'd line to the suspect's evidence; NULL is an OOM already. */
static int ev_add(md_suspect *sp, char *s) {
  if (!s)
    return -ENOMEM;
  char **l = realloc(sp->evidence, (size_t)(sp->n_evidence + 1) * sizeof *l);
  if (!l) {
    free(s);
    return -ENOMEM;
  }
  l[sp->n_evidence++] = s;
  sp->evidence = l;
  return 0;
}

/* --- Chains ------------------------------------------------------------------- */

/* The candidate index of the link into chain position i (1..n). */
static int cand_seg(const md_localise *m, md_dir dir, int i) {
  return dir == MD_DIR_FORWARD ? i - 1 : m->f.n + i - 1;
}
static int host_b(const md_localise *m) {
  return m->f.n + m->r.n;
}
static int host_a(const md_localise *m) {
  return m->f.n + m->r.n + 1;
}

/* A hop that answered (the others carry no information). */
static bool answered(const md_hop *h) {
  return h->n_hosts > 0 && h->st.recv > 0 && md_verdict_hop_sent(h) > 0;
}

/* Read a trace into a chain: its answering hops up to the destination, the
 * source agent at position 0. -ENODATA when the destination was not reached. */
static int chain_build(chain *c, md_dir dir, const md_path *p, const char *src_ip) {
  c->dir = dir;
  int d = md_verdict_destination_idx(p);
  if (!p->reached || d < 0)
    return -ENODATA;
  for (int i = 0; i < MAXPOS; i++)
    c->mate[i] = -1;
  pos *z = &c->p[0];
  z->ttl = 0;
  z->obs = -1;
  sfmt(z->ip, sizeof z->ip, "%s", src_ip ? src_ip : "");
  int n = 0;
  for (int idx = 0; idx <= d && idx < p->n_hops; idx++) {
    const md_hop *h = &p->hops[idx];
    if (!answered(h)) {
      if (idx == d)
        return -ENODATA;
      continue;
    }
    if (n + 1 >= MAXPOS || h->ttl <= c->p[n].ttl)
      return -ENODATA;
    pos *q = &c->p[++n];
    q->ttl = h->ttl;
    q->obs = -1;
    q->n_silent_before = h->ttl - c->p[n - 1].ttl - 1;
    md_verdict_hop_ip(h, q->ip, sizeof q->ip);
    if (idx == d && p->target)
      sfmt(q->ip, sizeof q->ip, "%s", p->target);
    q->addrs = malloc((size_t)h->n_hosts * sizeof *q->addrs);
    if (!q->addrs)
      return -ENOMEM;
    q->n_addrs = h->n_hosts;
    for (int k = 0; k < h->n_hosts; k++)
      q->addrs[k] = h->hosts[k].addr;
    q->sent = md_verdict_hop_sent(h);
    q->recv = h->st.recv < q->sent ? h->st.recv : q->sent;
    q->avg_ms = md_stats_avg_ms(&h->st);
    q->best_ms = md_stats_best_ms(&h->st);
    q->se_ms = h->st.recv > 0 ? md_stats_stdev_ms(&h->st) / sqrt((double)h->st.recv) : 0;
  }
  c->n = n;
  return n >= 1 ? 0 : -ENODATA;
}

/* Ascending order for the median. */
static int dbl_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The RTT floor from each position to the destination (a spike at one hop
 * vanishes under the later, lower hops), its step from the previous
 * position less the path's typical step (the median: the propagation every
 * hop adds), and the spread a step may have without any fault. */
static void chain_floors(chain *c) {
  double mn = INFINITY;
  int at = c->n;
  for (int i = c->n; i >= 1; i--) {
    if (c->p[i].avg_ms < mn) {
      mn = c->p[i].avg_ms;
      at = i;
    }
    c->fl[i] = mn;
    c->fl_at[i] = at;
  }
  c->fl[0] = 0;
  c->fl_at[0] = 0;
  for (int i = 1; i <= c->n; i++) {
    c->phi[i] = c->fl[i] - c->fl[i - 1];
    double se1 = c->p[c->fl_at[i]].se_ms, se0 = i > 1 ? c->p[c->fl_at[i - 1]].se_ms : 0;
    double s0 = fmax(MD_LOCALISE_LAT_SIGMA_MS, MD_LOCALISE_LAT_SIGMA_SHARE * c->fl[i - 1]);
    c->sig[i] = sqrt(se1 * se1 + se0 * se0 + s0 * s0);
  }
  c->base_step = 0;
  if (c->n >= 3) {
    double st[MAXPOS];
    memcpy(st, &c->phi[1], (size_t)c->n * sizeof st[0]);
    qsort(st, (size_t)c->n, sizeof st[0], dbl_cmp);
    c->base_step = c->n % 2 ? st[c->n / 2] : (st[c->n / 2 - 1] + st[c->n / 2]) / 2;
  }
  for (int i = 1; i <= c->n; i++)
    c->phi[i] -= c->base_step;
}

/* The chain position with this TTL, -1 when it did not answer or is not there. */
static int pos_of_ttl(const chain *c, int ttl) {
  for (int i = 0; i <= c->n; i++)
    if (c->p[i].ttl == ttl)
      return i;
  return -1;
}

/* Pair forward position i and reverse position j as one router, if that
 * keeps the pairing consistent: each position paired once, the order of
 * the pairs reversed between the chains (the reverse path runs the other
 * way), no ECMP hop (its probes meet several routers), no agent. */
static bool try_match(md_localise *m, int i, int j) {
  chain *f = &m->f, *r = &m->r;
  if (i <= 0 || i >= f->n || j <= 0 || j >= r->n)
    return false;
  if (f->mate[i] >= 0 || r->mate[j] >= 0)
    return f->mate[i] == j;
  if (f->p[i].n_addrs > 1 || r->p[j].n_addrs > 1)
    return false;
  for (int k = 0; k <= f->n; k++) {
    int mk = f->mate[k];
    if (mk >= 0 && ((k < i && mk <= j) || (k > i && mk >= j)))
      return false;
  }
  f->mate[i] = j;
  r->mate[j] = i;
  return true;
}

/* Which routers the two chains share: the agents at the ends, the
 * alignment's pairs (same_ip and gateway: one router; link_mate: the two
 * routers of one link, each the other trace's previous hop), then the
 * access-link assumption (the first hop of each agent's trace is the other
 * trace's last router). */
static void match_chains(md_localise *m, const md_alignment *al) {
  chain *f = &m->f, *r = &m->r;
  f->mate[0] = r->n;
  r->mate[r->n] = 0;
  f->mate[f->n] = 0;
  r->mate[0] = f->n;
  static const char *const order[] = {"same_ip", "gateway", "link_mate"};
  for (int w = 0; w < 3; w++)
    for (int k = 0; al && k < al->n_shared; k++) {
      const md_align_pair *pr = &al->shared[k];
      if (strcmp(pr->how, order[w]) != 0)
        continue;
      if (w < 2) {
        try_match(m, pos_of_ttl(f, pr->forward_ttl), pos_of_ttl(r, pr->reverse_ttl));
      } else {
        try_match(m, pos_of_ttl(f, pr->forward_ttl), pos_of_ttl(r, pr->reverse_ttl - 1));
        try_match(m, pos_of_ttl(f, pr->forward_ttl - 1), pos_of_ttl(r, pr->reverse_ttl));
      }
    }
  int i = pos_of_ttl(f, 1), j = pos_of_ttl(r, r->p[r->n].ttl - 1);
  if (i > 0 && j > 0 && f->mate[i] < 0 && r->mate[j] < 0)
    m->assumed_gw[0] = try_match(m, i, j);
  i = pos_of_ttl(f, f->p[f->n].ttl - 1);
  j = pos_of_ttl(r, 1);
  if (i > 0 && j > 0 && f->mate[i] < 0 && r->mate[j] < 0)
    m->assumed_gw[1] = try_match(m, i, j);
}

/* --- Routes ------------------------------------------------------------------- */

/* Combine a way's code for a candidate: certain beats possible beats none. */
static void mark(uint8_t *x, int c, int code) {
  if (x[c] != X_YES && code != X_NO)
    x[c] = (uint8_t)code;
}

/* Mark the links into positions from..to of a chain. */
static void mark_segs(const md_localise *m, uint8_t *x, const chain *c, int from, int to,
                      int code) {
  for (int i = from < 1 ? 1 : from; i <= to && i <= c->n; i++)
    mark(x, cand_seg(m, c->dir, i), code);
}

/* The chain that starts at an agent, and the one that ends there. */
static const chain *own_chain(const md_localise *m, md_agent_side s) {
  return s == MD_AGENT_A ? &m->f : &m->r;
}
static const chain *other_chain(const md_localise *m, md_agent_side s) {
  return s == MD_AGENT_A ? &m->r : &m->f;
}

/* A node's position on a chain (-1: not on it). */
static int node_on(const md_localise *m, node nd, const chain *c) {
  return c == &m->f ? nd.fi : nd.ri;
}

/* The node at a chain position. */
static node node_of(const md_localise *m, md_dir dir, int k) {
  node nd;
  if (dir == MD_DIR_FORWARD) {
    nd.fi = k;
    nd.ri = m->f.mate[k];
  } else {
    nd.ri = k;
    nd.fi = m->r.mate[k];
  }
  return nd;
}

/* The nearest shared position before / after i (the ends always are). */
static int mated_before(const chain *c, int i) {
  for (int k = i - 1; k > 0; k--)
    if (c->mate[k] >= 0)
      return k;
  return 0;
}
static int mated_after(const chain *c, int i) {
  for (int k = i + 1; k < c->n; k++)
    if (c->mate[k] >= 0)
      return k;
  return c->n;
}

/* The way from agent s to node nd. On s's own trace: its links up to nd.
 * A router only the other trace saw: assumed reached over s's trace up to
 * the last router shared before it (counted from s's side), then over links
 * no trace saw; possibly (not assumed) further along s's trace to the next
 * shared router and back along the other trace to it. */
static void route_to(const md_localise *m, md_agent_side s, node nd, uint8_t *x) {
  const chain *S = own_chain(m, s), *O = other_chain(m, s);
  int i = node_on(m, nd, S);
  if (i >= 0) {
    mark_segs(m, x, S, 1, i, X_YES);
    return;
  }
  int j = node_on(m, nd, O);
  int jn = mated_after(O, j), jf = mated_before(O, j);
  int ia = O->mate[jn], ib = O->mate[jf];
  mark_segs(m, x, S, 1, ia, X_YES);
  mark_segs(m, x, S, ia + 1, ib, X_MAYBE);
  mark_segs(m, x, O, jf + 1, j, X_MAYBE);
}

/* The way from node nd back to agent s. On the trace that ends at s (the
 * other agent's): its links from nd on, for certain (routing toward s's
 * address). A router only s's own trace saw: assumed to answer back the way
 * the probe came, to the last shared router before it, then along the other
 * trace; possibly (not assumed) forward to the next shared router and along
 * the other trace from there. */
static void route_from(const md_localise *m, node nd, md_agent_side s, uint8_t *x) {
  const chain *S = own_chain(m, s), *O = other_chain(m, s);
  int j = node_on(m, nd, O);
  if (j >= 0) {
    mark_segs(m, x, O, j + 1, O->n, X_YES);
    return;
  }
  int i = node_on(m, nd, S);
  int in = mated_before(S, i), ifar = mated_after(S, i);
  int ja = S->mate[in], jb = S->mate[ifar];
  mark_segs(m, x, O, ja + 1, O->n, X_YES);
  mark_segs(m, x, O, jb + 1, ja, X_MAYBE);
  mark_segs(m, x, S, i + 1, ifar, X_MAYBE);
}

/* Both ways of a round trip from agent s to node nd; the destination host
 * candidates for a probe to an agent. */
static void round_trip(const md_localise *m, md_agent_side s, node nd, uint8_t *go, uint8_t *back) {
  memset(go, 0, (size_t)m->nc);
  memset(back, 0, (size_t)m->nc);
  route_to(m, s, nd, go);
  route_from(m, nd, s, back);
  if (s == MD_AGENT_A && nd.fi == m->f.n)
    go[host_b(m)] = X_YES;
  if (s == MD_AGENT_B && nd.ri == m->r.n)
    go[host_a(m)] = X_YES;
}

/* The code of a whole observation for a candidate. */
static int code_of(const uint8_t *go, const uint8_t *back, int c) {
  int a = go[c], b = back[c];
  if (a == X_YES || b == X_YES)
    return X_YES;
  return a == X_MAYBE || b == X_MAYBE ? X_MAYBE : X_NO;
}
static int obs_code(const obs *o, int c) {
  return code_of(o->go, o->back, c);
}

/* An agent node. */
static node node_agent(const md_localise *m, md_agent_side s) {
  node nd;
  nd.fi = s == MD_AGENT_A ? 0 : m->f.n;
  nd.ri = s == MD_AGENT_A ? m->r.n : 0;
  return nd;
}
static bool node_is(const md_localise *m, node nd, md_agent_side s) {
  node a = node_agent(m, s);
  return nd.fi == a.fi && nd.ri == a.ri;
}

/* The node that owns an address (any responder of either trace, or an
 * agent), with words for where it was seen. */
static int find_node(const md_localise *m, const char *target, node *nd, char *where, size_t len) {
  md_addr t;
  if (!target || md_addr_parse(target, &t) != 0)
    return -EINVAL;
  if (m->have_a_addr && md_addr_equal(&t, &m->a_addr)) {
    *nd = node_agent(m, MD_AGENT_A);
    sfmt(where, len, "%s", m->a_name);
    return 0;
  }
  if (m->have_b_addr && md_addr_equal(&t, &m->b_addr)) {
    *nd = node_agent(m, MD_AGENT_B);
    sfmt(where, len, "%s", m->b_name);
    return 0;
  }
  const chain *cs[2] = {&m->f, &m->r};
  for (int w = 0; w < 2; w++)
    for (int k = 1; k <= cs[w]->n; k++)
      for (int a = 0; a < cs[w]->p[k].n_addrs; a++)
        if (md_addr_equal(&t, &cs[w]->p[k].addrs[a])) {
          *nd = node_of(m, cs[w]->dir, k);
          if (k == cs[w]->n)
            sfmt(where, len, "%s", w == 0 ? m->b_name : m->a_name);
          else
            sfmt(where, len, "%s hop %d", w == 0 ? "forward" : "reverse", cs[w]->p[k].ttl);
          return 0;
        }
  return -ENOENT;
}

/* --- Observations ------------------------------------------------------------- */

/* A new observation at the end of the list, with its code tables. */
static obs *obs_new(md_localise *m) {
  if (m->n_obs == m->cap_obs) {
    int cap = m->cap_obs ? m->cap_obs * 2 : 64;
    obs *o = realloc(m->o, (size_t)cap * sizeof *o);
    if (!o)
      return NULL;
    m->o = o;
    m->cap_obs = cap;
  }
  obs *o = &m->o[m->n_obs];
  memset(o, 0, sizeof *o);
  o->go = calloc((size_t)m->nc, 1);
  o->back = calloc((size_t)m->nc, 1);
  if (!o->go || !o->back) {
    free(o->go);
    free(o->back);
    return NULL;
  }
  m->n_obs++;
  return o;
}

/* Every answering hop of both traces, one observation each (ECMP
 * responders of a hop count once, as one hop). */
static int add_trace_obs(md_localise *m) {
  chain *cs[2] = {&m->f, &m->r};
  for (int w = 0; w < 2; w++) {
    chain *c = cs[w];
    md_agent_side s = w == 0 ? MD_AGENT_A : MD_AGENT_B;
    for (int k = 1; k <= c->n; k++) {
      obs *o = obs_new(m);
      if (!o)
        return -ENOMEM;
      o->type = OBS_HOP;
      o->dir = c->dir;
      o->from = s;
      o->pos = k;
      o->rl = k < c->n;
      o->sent = c->p[k].sent;
      o->recv = c->p[k].recv;
      if (k < c->n)
        sfmt(o->label, sizeof o->label, "%s hop %d (%s)", w == 0 ? "forward" : "reverse",
             c->p[k].ttl, c->p[k].ip);
      else
        sfmt(o->label, sizeof o->label, "%s hop %d, the destination %s (%s)",
             w == 0 ? "forward" : "reverse", c->p[k].ttl, w == 0 ? m->b_name : m->a_name,
             c->p[k].ip);
      round_trip(m, s, node_of(m, c->dir, k), o->go, o->back);
      c->p[k].obs = m->n_obs - 1;
    }
  }
  return 0;
}

/* Drop the one-way observations (they sit after the trace hops). */
static void drop_oneway_obs(md_localise *m) {
  int w = 0;
  for (int k = 0; k < m->n_obs; k++) {
    if (m->o[k].type == OBS_ONEWAY) {
      free(m->o[k].go);
      free(m->o[k].back);
      continue;
    }
    m->o[w++] = m->o[k];
  }
  m->n_obs = w;
}

/* --- Loss --------------------------------------------------------------------- */

/* Binomial log-likelihood of recv of sent with success probability q
 * (the binomial coefficient dropped: it is the same for every model). */
static double bin_ll(uint32_t sent, uint32_t recv, double q) {
  double l = 0;
  uint32_t lost = sent - recv;
  if (recv)
    l += recv * log(q > 1e-300 ? q : 1e-300);
  if (lost)
    l += lost * log(1 - q > 1e-300 ? 1 - q : 1e-300);
  return l;
}

/* An observation's log-likelihood when its packets do (not) cross a link
 * dropping share p; a router's answer may in addition be rate limited, at
 * MD_LOCALISE_RL_COST, when that explains more loss. */
static double obs_ll(const obs *o, bool crossed, double p, double bg, bool *rl, double *pred) {
  double q = (1.0 - bg) * (1.0 - (crossed ? p : 0.0));
  double l = bin_ll(o->sent, o->recv, q);
  *rl = false;
  *pred = 1.0 - q;
  if (o->rl) {
    double qh = (double)o->recv / o->sent;
    if (qh < q) {
      double l2 = bin_ll(o->sent, o->recv, qh) - MD_LOCALISE_RL_COST;
      if (l2 > l) {
        l = l2;
        *rl = true;
      }
    }
  }
  return l;
}

/* The best state of an observation under candidate c dropping p: a way
 * that may cross it (only on a route other than assumed) takes the better
 * of the two at MD_LOCALISE_ROUTE_COST. */
static double cand_obs_ll(const obs *o, int c, double p, double bg, ostate *st) {
  int code = obs_code(o, c);
  ostate s = {0}, s1 = {0};
  s.ll = obs_ll(o, code == X_YES, p, bg, &s.rl, &s.pred);
  s.crossed = code == X_YES;
  if (code == X_MAYBE) {
    s1.ll = obs_ll(o, true, p, bg, &s1.rl, &s1.pred) - MD_LOCALISE_ROUTE_COST;
    s1.crossed = s1.alt = true;
    if (s1.ll > s.ll)
      s = s1;
  }
  if (st)
    *st = s;
  return s.ll;
}

/* The whole log-likelihood of candidate c dropping p over background
 * BG[g] (cand_obs_ll for every observation, with the logarithms shared:
 * this runs for every grid point of every candidate). */
static double loss_total(const md_localise *m, int c, double p, int g) {
  const double *base = m->l_base + (size_t)g * (size_t)m->n_obs;
  double q = (1.0 - BG[g]) * (1.0 - p);
  double lq = log(q > 1e-300 ? q : 1e-300), l1q = log(1 - q > 1e-300 ? 1 - q : 1e-300);
  double t = 0;
  for (int k = 0; k < m->n_obs; k++) {
    const obs *o = &m->o[k];
    int code = obs_code(o, c);
    if (code == X_NO) {
      t += base[k];
      continue;
    }
    double l = o->recv * lq + (o->sent - o->recv) * l1q;
    if (o->rl && (double)o->recv / o->sent < q && m->l_sat[k] - MD_LOCALISE_RL_COST > l)
      l = m->l_sat[k] - MD_LOCALISE_RL_COST;
    if (code == X_MAYBE)
      l = fmax(base[k], l - MD_LOCALISE_ROUTE_COST);
    t += l;
  }
  return t;
}

/* Maximum likelihood of candidate c's loss share over background BG[g]: a
 * grid, then a golden-section search around the best grid point (the
 * likelihood is a maximum of smooth pieces, so not concave everywhere). */
static double fit_share(const md_localise *m, int c, int g, double *ll) {
  double bp = 0, bl = loss_total(m, c, 0, g);
  for (int i = 1; i <= GRID; i++) {
    double p = (double)i / GRID, l = loss_total(m, c, p, g);
    if (l > bl) {
      bl = l;
      bp = p;
    }
  }
  double lo = fmax(0, bp - 1.0 / GRID), hi = fmin(1, bp + 1.0 / GRID);
  const double gr = 0.6180339887498949;
  double x1 = hi - gr * (hi - lo), x2 = lo + gr * (hi - lo);
  double f1 = loss_total(m, c, x1, g), f2 = loss_total(m, c, x2, g);
  for (int it = 0; it < 40; it++) {
    if (f1 > f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - gr * (hi - lo);
      f1 = loss_total(m, c, x1, g);
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + gr * (hi - lo);
      f2 = loss_total(m, c, x2, g);
    }
  }
  double x = (lo + hi) / 2, l = loss_total(m, c, x, g);
  if (l > bl) {
    bl = l;
    bp = x;
  }
  *ll = bl;
  return bp;
}

/* Every candidate's loss share and background by maximum likelihood, and
 * the healthy model's (background only). */
static int fit_loss(md_localise *m) {
  size_t no = (size_t)(m->n_obs ? m->n_obs : 1);
  double *b = realloc(m->l_base, NBG * no * sizeof *b);
  if (!b)
    return -ENOMEM;
  m->l_base = b;
  double *sat = realloc(m->l_sat, no * sizeof *sat);
  if (!sat)
    return -ENOMEM;
  m->l_sat = sat;
  for (int k = 0; k < m->n_obs; k++)
    sat[k] = bin_ll(m->o[k].sent, m->o[k].recv, (double)m->o[k].recv / m->o[k].sent);
  m->l_null = -INFINITY;
  for (int g = 0; g < NBG; g++) {
    double t = 0;
    for (int k = 0; k < m->n_obs; k++) {
      bool rl;
      double pred;
      b[(size_t)g * no + k] = obs_ll(&m->o[k], false, 0, BG[g], &rl, &pred);
      t += b[(size_t)g * no + k];
    }
    if (t > m->l_null) {
      m->l_null = t;
      m->l_null_bg = BG[g];
    }
  }
  for (int c = 0; c < m->nc; c++) {
    m->l_logl[c] = -INFINITY;
    for (int g = 0; g < NBG; g++) {
      double ll, p = fit_share(m, c, g, &ll);
      if (ll > m->l_logl[c]) {
        m->l_logl[c] = ll;
        m->l_est[c] = p;
        m->l_bg[c] = BG[g];
      }
    }
  }
  return 0;
}

/* --- Latency ------------------------------------------------------------------ */

/* A candidate's code at chain position i (its trace observation). */
static int chain_code(const md_localise *m, const chain *ch, int i, int c) {
  return obs_code(&m->o[ch->p[i].obs], c);
}

/* Where the delay of candidate c first shows on a chain: the first position
 * whose round trip crosses it for certain, or (at ROUTE_COST) an earlier one
 * whose round trip crosses it only on a route other than assumed. A chain
 * where the crossing positions do not form one stretch to the end ("not
 * monotone") takes every change as a step. Returns the number of options. */
static int cut_options(const md_localise *m, const chain *ch, int c, cutopt *opt) {
  int c0 = ch->n + 1;
  for (int i = 1; i <= ch->n; i++)
    if (chain_code(m, ch, i, c) == X_YES) {
      c0 = i;
      break;
    }
  bool mono = true;
  for (int i = c0; i <= ch->n; i++)
    if (chain_code(m, ch, i, c) != X_YES)
      mono = false;
  int k = 0;
  opt[k++] = (cutopt){c0, false, mono};
  for (int i = c0 - 1; mono && i >= 1 && chain_code(m, ch, i, c) == X_MAYBE; i--)
    opt[k++] = (cutopt){i, true, true};
  return k;
}

/* The predicted floor step (in units of d) at position i for a cut. */
static int step_at(const md_localise *m, const chain *ch, int c, cutopt o, int i) {
  if (o.mono)
    return i == o.cut;
  int now = chain_code(m, ch, i, c) == X_YES;
  int before = i > 1 && chain_code(m, ch, i - 1, c) == X_YES;
  return now - before;
}

/* The one-way delay sign of a candidate: +1 forward link, -1 reverse, 0 host. */
static int ow_sign(const md_localise *m, int c) {
  if (c < m->f.n)
    return 1;
  return c < m->f.n + m->r.n ? -1 : 0;
}

/* Least squares of every candidate's added delay on the floor steps of both
 * traces (and the one-way delay difference), the best cut per chain. */
static int fit_latency(md_localise *m) {
  const chain *cs[2] = {&m->f, &m->r};
  double spp = 0;
  for (int w = 0; w < 2; w++)
    for (int i = 1; i <= cs[w]->n; i++)
      spp += cs[w]->phi[i] * cs[w]->phi[i] / (cs[w]->sig[i] * cs[w]->sig[i]);
  if (m->have_owd)
    spp += m->ow_z * m->ow_z / (m->ow_sz * m->ow_sz);
  m->d_null = -0.5 * spp;
  cutopt *of = malloc(MAXPOS * sizeof *of), *orv = malloc(MAXPOS * sizeof *orv);
  if (!of || !orv) {
    free(of);
    free(orv);
    return -ENOMEM;
  }
  for (int c = 0; c < m->nc; c++) {
    int nf = cut_options(m, &m->f, c, of), nr = cut_options(m, &m->r, c, orv);
    double best = -INFINITY, bd = 0;
    int bf = 0, br = 0;
    for (int a = 0; a < nf; a++)
      for (int b = 0; b < nr; b++) {
        double stt = 0, stp = 0;
        for (int w = 0; w < 2; w++) {
          const chain *ch = cs[w];
          cutopt o = w == 0 ? of[a] : orv[b];
          for (int i = 1; i <= ch->n; i++) {
            int t = step_at(m, ch, c, o, i);
            if (t) {
              double s2 = ch->sig[i] * ch->sig[i];
              stt += t * t / s2;
              stp += t * ch->phi[i] / s2;
            }
          }
        }
        if (m->have_owd) {
          int sg = ow_sign(m, c);
          double s2 = m->ow_sz * m->ow_sz;
          stt += sg * sg / s2;
          stp += sg * m->ow_z / s2;
        }
        double d = stt > 0 ? fmax(0, stp / stt) : 0;
        double ll = -0.5 * (spp - 2 * d * stp + d * d * stt) -
                    MD_LOCALISE_ROUTE_COST * ((of[a].alt ? 1 : 0) + (orv[b].alt ? 1 : 0));
        if (ll > best) {
          best = ll;
          bd = d;
          bf = a;
          br = b;
        }
      }
    m->d_est[c] = bd;
    m->d_logl[c] = best;
    m->d_cut[2 * c] = of[bf];
    m->d_cut[2 * c + 1] = orv[br];
  }
  free(of);
  free(orv);
  return 0;
}

/* Both fits, after any change to the observations. */
static int refit(md_localise *m) {
  int rc = fit_loss(m);
  return rc ? rc : fit_latency(m);
}

/* --- Model -------------------------------------------------------------------- */

/* The one-way stream as observations (loss) and as a delay difference. */
static int set_oneway(md_localise *m, const md_oneway_dir *fw, const md_oneway_dir *rv) {
  drop_oneway_obs(m);
  m->have_owl = m->have_owd = false;
  const md_oneway_dir *d[2] = {fw, rv};
  for (int w = 0; w < 2; w++) {
    if (!d[w] || d[w]->sent == 0)
      continue;
    obs *o = obs_new(m);
    if (!o)
      return -ENOMEM;
    o->type = OBS_ONEWAY;
    o->dir = w == 0 ? MD_DIR_FORWARD : MD_DIR_REVERSE;
    o->from = w == 0 ? MD_AGENT_A : MD_AGENT_B;
    o->sent = d[w]->sent;
    o->recv = d[w]->recv < d[w]->sent ? d[w]->recv : d[w]->sent;
    sfmt(o->label, sizeof o->label, "one-way stream %s -> %s", w == 0 ? m->a_name : m->b_name,
         w == 0 ? m->b_name : m->a_name);
    route_to(m, o->from, node_agent(m, w == 0 ? MD_AGENT_B : MD_AGENT_A), o->go);
    m->have_owl = true;
  }
  if (fw && rv && fw->recv > 0 && rv->recv > 0 && fw->delay_avg_ms > 0 && rv->delay_avg_ms > 0) {
    m->have_owd = true;
    m->ow_fwd_ms = fw->delay_avg_ms;
    m->ow_rev_ms = rv->delay_avg_ms;
    m->ow_z = fw->delay_avg_ms - rv->delay_avg_ms;
    double s0 = fmax(MD_LOCALISE_LAT_SIGMA_MS,
                     MD_LOCALISE_LAT_SIGMA_SHARE * (fw->delay_avg_ms + rv->delay_avg_ms));
    m->ow_sz = sqrt(fw->delay_stdev_ms * fw->delay_stdev_ms / fw->recv +
                    rv->delay_stdev_ms * rv->delay_stdev_ms / rv->recv + s0 * s0);
  }
  return 0;
}

/* Frees everything the model holds. */
void md_localise_free(md_localise *m) {
  if (!m)
    return;
  for (int i = 0; i < MAXPOS; i++) {
    free(m->f.p[i].addrs);
    free(m->r.p[i].addrs);
  }
  for (int k = 0; k < m->n_obs; k++) {
    free(m->o[k].go);
    free(m->o[k].back);
  }
  free(m->o);
  free(m->l_base);
  free(m->l_sat);
  free(m->l_est);
  free(m->l_logl);
  free(m->l_bg);
  free(m->d_est);
  free(m->d_logl);
  free(m->d_cut);
  free(m);
}

/* Chains, shared routers, candidates, observations, and the first fit. */
static int build(md_localise *m, const md_localise_input *in, const md_alignment *al) {
  const md_path *fp = in->forward, *rp = in->reverse;
  const char *a_ip = in->a_address ? in->a_address : rp->target;
  const char *b_ip = in->b_address ? in->b_address : fp->target;
  if (!a_ip || !b_ip)
    return -ENODATA;
  sfmt(m->a_ip, sizeof m->a_ip, "%s", a_ip);
  sfmt(m->b_ip, sizeof m->b_ip, "%s", b_ip);
  m->have_a_addr = md_addr_parse(a_ip, &m->a_addr) == 0;
  m->have_b_addr = md_addr_parse(b_ip, &m->b_addr) == 0;
  sfmt(m->a_name, sizeof m->a_name, "%s",
       fp->source        ? fp->source
       : rp->target_name ? rp->target_name
                         : "A");
  sfmt(m->b_name, sizeof m->b_name, "%s",
       fp->target_name ? fp->target_name
       : rp->source    ? rp->source
                       : "B");
  int rc = chain_build(&m->f, MD_DIR_FORWARD, fp, a_ip);
  if (rc == 0)
    rc = chain_build(&m->r, MD_DIR_REVERSE, rp, b_ip);
  if (rc != 0)
    return rc;
  chain_floors(&m->f);
  chain_floors(&m->r);
  match_chains(m, al);
  m->nc = m->f.n + m->r.n + 2;
  size_t nc = (size_t)m->nc;
  m->l_est = calloc(nc, sizeof *m->l_est);
  m->l_logl = calloc(nc, sizeof *m->l_logl);
  m->l_bg = calloc(nc, sizeof *m->l_bg);
  m->d_est = calloc(nc, sizeof *m->d_est);
  m->d_logl = calloc(nc, sizeof *m->d_logl);
  m->d_cut = calloc(2 * nc, sizeof *m->d_cut);
  if (!m->l_est || !m->l_logl || !m->l_bg || !m->d_est || !m->d_logl || !m->d_cut)
    return -ENOMEM;
  if ((rc = add_trace_obs(m)) != 0 ||
      (rc = set_oneway(m, in->oneway_forward, in->oneway_reverse)) != 0)
    return rc;
  return refit(m);
}

/* The model from both traces: see localise.h. */
int md_localise_new(const md_localise_input *in, md_localise **out) {
  if (!in || !out || !in->forward || !in->reverse)
    return -EINVAL;
  *out = NULL;
  md_localise *m = calloc(1, sizeof *m);
  if (!m)
    return -ENOMEM;
  md_alignment own = {0};
  const md_alignment *al = in->alignment;
  int rc = 0;
  if (!al) {
    rc = md_align(in->forward, in->reverse, &own);
    al = &own;
  }
  if (rc == 0)
    rc = build(m, in, al);
  md_alignment_clear(&own);
  if (rc != 0) {
    md_localise_free(m);
    return rc;
  }
  *out = m;
  return 0;
}

/* New one-way figures, and the fit that follows from them. */
int md_localise_set_oneway(md_localise *m, const md_oneway_dir *forward,
                           const md_oneway_dir *reverse) {
  if (!m)
    return -EINVAL;
  int rc = set_oneway(m, forward, reverse);
  return rc ? rc : refit(m);
}

/* A follow-up ping's counts as one more observation. */
int md_localise_add_followup(md_localise *m, md_agent_side from, const char *target, uint32_t sent,
                             uint32_t recv) {
  if (!m || !target || sent == 0 || recv > sent || (from != MD_AGENT_A && from != MD_AGENT_B))
    return -EINVAL;
  node nd;
  char where[64];
  int rc = find_node(m, target, &nd, where, sizeof where);
  if (rc != 0)
    return rc;
  if (node_is(m, nd, from))
    return -EINVAL;
  obs *o = obs_new(m);
  if (!o)
    return -ENOMEM;
  o->type = OBS_FOLLOW;
  o->from = from;
  o->dir = from == MD_AGENT_A ? MD_DIR_FORWARD : MD_DIR_REVERSE;
  o->rl = !node_is(m, nd, MD_AGENT_A) && !node_is(m, nd, MD_AGENT_B);
  o->sent = sent;
  o->recv = recv;
  sfmt(o->label, sizeof o->label, "ping from %s to %s (%s)",
       from == MD_AGENT_A ? m->a_name : m->b_name, target, where);
  round_trip(m, from, nd, o->go, o->back);
  return refit(m);
}

/* How one ping would meet one candidate. */
int md_localise_crossing(const md_localise *m, md_agent_side from, const char *target, int id,
                         int *code, int *part) {
  if (!m || !code || id < 0 || id >= m->nc)
    return -EINVAL;
  node nd;
  char where[64];
  int rc = find_node(m, target, &nd, where, sizeof where);
  if (rc != 0)
    return rc;
  if (node_is(m, nd, from))
    return -EINVAL;
  uint8_t *go = calloc((size_t)m->nc, 1), *back = calloc((size_t)m->nc, 1);
  if (!go || !back) {
    free(go);
    free(back);
    return -ENOMEM;
  }
  round_trip(m, from, nd, go, back);
  *code = code_of(go, back, id);
  if (part)
    *part = (go[id] != X_NO ? 1 : 0) | (back[id] != X_NO ? 2 : 0);
  free(go);
  free(back);
  return 0;
}

int md_localise_n_candidates(const md_localise *m) {
  return m ? m->nc : -EINVAL;
}

/* --- Candidates and ranking ----------------------------------------------------- */

/* Words for a chain position: "local (198.18.1.1)", "hop 3 (198.18.3.2)". */
static void pos_words(const md_localise *m, const chain *c, int k, char *buf, size_t len) {
  if (k == 0)
    sfmt(buf, len, "%s (%s)", c == &m->f ? m->a_name : m->b_name, c->p[0].ip);
  else if (k == c->n)
    sfmt(buf, len, "%s (%s)", c == &m->f ? m->b_name : m->a_name, c->p[k].ip);
  else
    sfmt(buf, len, "hop %d (%s)", c->p[k].ttl, c->p[k].ip);
}

/* Whether a fitted candidate is above noise (localise.h MIN_* rules). */
static bool is_finding(const md_localise *m, md_loc_metric metric, int c, double *level) {
  if (level)
    *level = 0;
  if (metric == MD_LOC_LOSS)
    return m->l_logl[c] - m->l_null >= MD_LOCALISE_MIN_GAIN && m->l_est[c] >= MD_LOCALISE_MIN_LOSS;
  double lv = INFINITY;
  const chain *cs[2] = {&m->f, &m->r};
  for (int w = 0; w < 2; w++) {
    cutopt o = m->d_cut[2 * c + w];
    if (o.cut >= 1 && o.cut <= cs[w]->n && step_at(m, cs[w], c, o, o.cut) > 0)
      lv = fmin(lv, cs[w]->fl[o.cut - 1]);
  }
  if (!isfinite(lv))
    lv = 0;
  if (level)
    *level = lv;
  double d = m->d_est[c];
  return m->d_logl[c] - m->d_null >= MD_LOCALISE_MIN_GAIN && d >= MD_LOCALISE_MIN_DELAY_MS &&
         d >= MD_LOCALISE_DELAY_SHARE * lv;
}

/* One candidate's names and fit. */
static void cand_info(const md_localise *m, md_loc_metric metric, int id, md_loc_candidate *c) {
  memset(c, 0, sizeof *c);
  c->id = id;
  char w2[MD_ADDRSTRLEN + 80];
  const chain *ch;
  int k;
  if (id < m->f.n + m->r.n) {
    char w1[MD_ADDRSTRLEN + 80];
    c->kind = MD_LOC_LINK;
    ch = id < m->f.n ? &m->f : &m->r;
    k = id < m->f.n ? id + 1 : id - m->f.n + 1;
    c->path = ch->dir;
    c->from_ttl = ch->p[k - 1].ttl;
    c->to_ttl = ch->p[k].ttl;
    sfmt(c->from_ip, sizeof c->from_ip, "%s", ch->p[k - 1].ip);
    sfmt(c->to_ip, sizeof c->to_ip, "%s", ch->p[k].ip);
    pos_words(m, ch, k - 1, w1, sizeof w1);
    pos_words(m, ch, k, w2, sizeof w2);
    int ns = ch->p[k].n_silent_before;
    if (ns > 0)
      sfmt(c->desc, sizeof c->desc, "%s link %s -> %s (across %d hop%s that never answered)",
           ch == &m->f ? "forward" : "reverse", w1, w2, ns, ns == 1 ? "" : "s");
    else
      sfmt(c->desc, sizeof c->desc, "%s link %s -> %s", ch == &m->f ? "forward" : "reverse", w1,
           w2);
  } else {
    c->kind = MD_LOC_HOST;
    ch = id == host_b(m) ? &m->f : &m->r;
    k = ch->n;
    c->path = ch->dir;
    c->from_ttl = ch->p[k - 1].ttl;
    c->to_ttl = ch->p[k].ttl;
    sfmt(c->from_ip, sizeof c->from_ip, "%s", ch->p[k - 1].ip);
    sfmt(c->to_ip, sizeof c->to_ip, "%s", ch->p[k].ip);
    pos_words(m, ch, k, w2, sizeof w2);
    sfmt(c->desc, sizeof c->desc, "destination %s itself", w2);
  }
  c->estimate = metric == MD_LOC_LOSS ? m->l_est[id] : m->d_est[id];
  c->logl = metric == MD_LOC_LOSS ? m->l_logl[id] : m->d_logl[id];
  c->gain = c->logl - (metric == MD_LOC_LOSS ? m->l_null : m->d_null);
  c->finding = is_finding(m, metric, id, NULL);
}

typedef struct rk {
  int id;
  double ll;
} rk;

/* Best first; the lower id on a tie (forward links, reverse links, hosts). */
static int rk_cmp(const void *a, const void *b) {
  const rk *x = a, *y = b;
  if (x->ll != y->ll)
    return x->ll > y->ll ? -1 : 1;
  return x->id - y->id;
}

/* The candidate ids of a metric, best first (caller frees). */
static rk *ranked(const md_localise *m, md_loc_metric metric) {
  rk *r = malloc((size_t)m->nc * sizeof *r);
  if (!r)
    return NULL;
  for (int c = 0; c < m->nc; c++) {
    r[c].id = c;
    r[c].ll = metric == MD_LOC_LOSS ? m->l_logl[c] : m->d_logl[c];
  }
  qsort(r, (size_t)m->nc, sizeof *r, rk_cmp);
  return r;
}

int md_localise_candidate(const md_localise *m, md_loc_metric metric, int id,
                          md_loc_candidate *out) {
  if (!m || !out || id < 0 || id >= m->nc || (metric != MD_LOC_LOSS && metric != MD_LOC_LATENCY))
    return -EINVAL;
  cand_info(m, metric, id, out);
  double best = -INFINITY;
  for (int c = 0; c < m->nc; c++)
    best = fmax(best, metric == MD_LOC_LOSS ? m->l_logl[c] : m->d_logl[c]);
  out->delta = best - out->logl;
  return 0;
}

/* The ranked list: see localise.h. */
int md_localise_rank(const md_localise *m, md_loc_metric metric, md_loc_candidate *out, int max) {
  if (!m || (metric != MD_LOC_LOSS && metric != MD_LOC_LATENCY) || (out && max < 0))
    return -EINVAL;
  if (!out)
    return m->nc;
  rk *r = ranked(m, metric);
  if (!r)
    return -ENOMEM;
  int n = max < m->nc ? max : m->nc;
  for (int i = 0; i < n; i++) {
    cand_info(m, metric, r[i].id, &out[i]);
    out[i].delta = r[0].ll - r[i].ll;
  }
  free(r);
  return n;
}

/* --- Follow-up planning ----------------------------------------------------------- */

/* One ping the planner may propose. */
typedef struct popt {
  md_agent_side from;
  node nd;
  char target[MD_ADDRSTRLEN];
  char where[64];
} popt;

/* Every ping the topology offers: from each agent to every router either
 * trace found (its address as the sender's own trace saw it when it did)
 * and to the other agent. Returns how many (caller frees *out). */
static int ping_options(const md_localise *m, popt **out) {
  int cap = 2 * (m->f.n + m->r.n + 2), n = 0;
  popt *o = calloc((size_t)cap, sizeof *o);
  if (!o)
    return -ENOMEM;
  for (int s = 0; s < 2; s++) {
    md_agent_side from = s == 0 ? MD_AGENT_A : MD_AGENT_B;
    const chain *S = own_chain(m, from), *O = other_chain(m, from);
    for (int w = 0; w < 2; w++) {
      const chain *ch = w == 0 ? S : O;
      for (int k = 1; k <= ch->n; k++) {
        node nd = node_of(m, ch->dir, k);
        if (node_is(m, nd, from))
          continue;
        int on_s = node_on(m, nd, S);
        if (ch == O && on_s >= 0)
          continue; /* offered from the sender's own trace already */
        popt *p = &o[n++];
        p->from = from;
        p->nd = nd;
        sfmt(p->target, sizeof p->target, "%s", ch->p[k].ip);
        if (k == ch->n)
          sfmt(p->where, sizeof p->where, "%s", ch == &m->f ? m->b_name : m->a_name);
        else
          sfmt(p->where, sizeof p->where, "%s hop %d", ch == &m->f ? "forward" : "reverse",
               ch->p[k].ttl);
      }
    }
  }
  *out = o;
  return n;
}

/* The candidates within MD_LOCALISE_MARGIN of the best, best first. */
static int contenders(const md_localise *m, md_loc_metric metric, int *ids, int max) {
  rk *r = ranked(m, metric);
  if (!r)
    return -ENOMEM;
  int n = 0;
  for (int i = 0; i < m->nc && n < max; i++)
    if (r[0].ll - r[i].ll < MD_LOCALISE_MARGIN)
      ids[n++] = r[i].id;
  free(r);
  return n;
}

/* How well a ping with codes x lets the truth X reject Y: Y crossed for
 * certain, X not at all (1) or only on a route other than assumed (0.5). */
static double sep_strength(const uint8_t *go, const uint8_t *back, int x, int y) {
  if (code_of(go, back, y) != X_YES)
    return 0;
  int cx = code_of(go, back, x);
  return cx == X_NO ? 1.0 : cx == X_MAYBE ? 0.5 : 0;
}

/* "its request", "its reply", "its request and its reply". */
static const char *part_words(const uint8_t *go, const uint8_t *back, int c) {
  bool g = go[c] == X_YES, b = back[c] == X_YES;
  return g && b ? "its request and its reply" : g ? "its request" : "its reply";
}

/* The planner and the one-way question share this: for every ordered pair
 * of contenders (X true, Y to reject) the best ping strength, and the
 * greedy plan. n_plan may be 0 and plan NULL to analyse only. */
typedef struct plan_ctx {
  int nc; /* contenders */
  int ids[MAX_CONTENDERS];
  double reach[MAX_CONTENDERS][MAX_CONTENDERS]; /* best strength any ping has */
} plan_ctx;

/* Greedy cover of the contender pairs by pings; fills out (if given). */
static int plan(const md_localise *m, plan_ctx *pc, int max_probes, md_followup_plan *out,
                int *n_out) {
  if (n_out)
    *n_out = 0;
  memset(pc, 0, sizeof *pc);
  int k = contenders(m, MD_LOC_LOSS, pc->ids, MAX_CONTENDERS);
  if (k < 0)
    return k;
  if (k < 2 || !is_finding(m, MD_LOC_LOSS, pc->ids[0], NULL))
    return 0; /* nothing to separate */
  pc->nc = k;
  popt *opts = NULL;
  int no = ping_options(m, &opts);
  if (no < 0)
    return no;
  uint8_t *go = calloc((size_t)no * (size_t)m->nc, 1),
          *back = calloc((size_t)no * (size_t)m->nc, 1);
  bool *used = calloc((size_t)no, sizeof *used);
  if (!go || !back || !used) {
    free(opts);
    free(go);
    free(back);
    free(used);
    return -ENOMEM;
  }
  for (int i = 0; i < no; i++)
    round_trip(m, opts[i].from, opts[i].nd, go + (size_t)i * m->nc, back + (size_t)i * m->nc);
  for (int i = 0; i < no; i++)
    for (int x = 0; x < k; x++)
      for (int y = 0; y < k; y++)
        if (x != y) {
          double s = sep_strength(go + (size_t)i * m->nc, back + (size_t)i * m->nc, pc->ids[x],
                                  pc->ids[y]);
          if (s > pc->reach[x][y])
            pc->reach[x][y] = s;
        }
  bool covered[MAX_CONTENDERS][MAX_CONTENDERS] = {{false}};
  int np = 0;
  while (out && np < max_probes) {
    int bi = -1;
    double bs = 0;
    for (int i = 0; i < no; i++) {
      if (used[i])
        continue;
      double s = 0;
      for (int x = 0; x < k; x++)
        for (int y = 0; y < k; y++)
          if (x != y && !covered[x][y])
            s += sep_strength(go + (size_t)i * m->nc, back + (size_t)i * m->nc, pc->ids[x],
                              pc->ids[y]);
      if (s > bs + 1e-9) {
        bs = s;
        bi = i;
      }
    }
    if (bi < 0)
      break;
    used[bi] = true;
    const uint8_t *g = go + (size_t)bi * m->nc, *b = back + (size_t)bi * m->nc;
    int fx = -1, fy = -1, more = 0;
    double fs = 0;
    for (int x = 0; x < k; x++)
      for (int y = 0; y < k; y++) {
        double s = x != y && !covered[x][y] ? sep_strength(g, b, pc->ids[x], pc->ids[y]) : 0;
        if (s <= 0)
          continue;
        covered[x][y] = true;
        more++;
        if (s > fs) {
          fs = s;
          fx = x;
          fy = y;
        }
      }
    if (fx < 0 || fy < 0)
      break; /* cannot happen: the probe was chosen for a pair it separates */
    md_followup_plan *p = &out[np++];
    memset(p, 0, sizeof *p);
    p->from = opts[bi].from;
    sfmt(p->target, sizeof p->target, "%s", opts[bi].target);
    md_loc_candidate cx, cy;
    cand_info(m, MD_LOC_LOSS, pc->ids[fx], &cx);
    cand_info(m, MD_LOC_LOSS, pc->ids[fy], &cy);
    sfmt(p->why, sizeof p->why,
         "ping from %s to %s (%s): no loss here would clear the %s, which %s crosses for "
         "certain, while the round trip avoids the %s%s%s",
         p->from == MD_AGENT_A ? m->a_name : m->b_name, p->target, opts[bi].where, cy.desc,
         part_words(g, b, pc->ids[fy]), cx.desc, fs < 1 ? " on the route assumed for it" : "",
         more > 1 ? " (it separates other pairs of suspects too)" : "");
  }
  if (n_out)
    *n_out = np;
  free(opts);
  free(go);
  free(back);
  free(used);
  return 0;
}

/* The follow-up plan: see localise.h. */
int md_localise_plan_followups(const md_localise *m, int max_probes, md_followup_plan *out,
                               int *n) {
  if (!m || !n || max_probes < 0 || (max_probes > 0 && !out))
    return -EINVAL;
  *n = 0;
  if (max_probes == 0)
    return 0;
  plan_ctx pc;
  return plan(m, &pc, max_probes, out, n);
}

/* --- The verdict ---------------------------------------------------------------- */

/* Whether the one-way stream, not yet measured, is what separates some
 * contenders: for loss, a pair no ping separates both ways whose one-way
 * crossing differs; for latency (pings are not read for it), a pair whose
 * one-way delay sign differs. */
static int oneway_needed(const md_localise *m, md_loc_metric metric, bool *need) {
  *need = false;
  if (metric == MD_LOC_LATENCY) {
    if (m->have_owd)
      return 0;
    int ids[MAX_CONTENDERS];
    int k = contenders(m, metric, ids, MAX_CONTENDERS);
    if (k < 0)
      return k;
    for (int x = 0; x < k; x++)
      for (int y = x + 1; y < k; y++)
        if (ow_sign(m, ids[x]) != ow_sign(m, ids[y]))
          *need = true;
    return 0;
  }
  if (m->have_owl)
    return 0;
  plan_ctx pc;
  int rc = plan(m, &pc, 0, NULL, NULL);
  if (rc != 0)
    return rc;
  for (int x = 0; x < pc.nc; x++)
    for (int y = x + 1; y < pc.nc; y++) {
      bool pings = pc.reach[x][y] > 0 && pc.reach[y][x] > 0;
      int sx = ow_sign(m, pc.ids[x]), sy = ow_sign(m, pc.ids[y]);
      if (!pings && sx != sy)
        *need = true;
    }
  return 0;
}

/* The figures of one observation. */
static void obs_figures(const obs *o, char *buf, size_t len) {
  sfmt(buf, len, "%u of %u lost (%.1f%%)", (unsigned)(o->sent - o->recv), (unsigned)o->sent,
       100.0 * (o->sent - o->recv) / o->sent);
}

/* Evidence for a loss suspect: the fit, the observations it predicts, the
 * rate-limited hops, the alternatives and what speaks against them. */
static int evidence_loss(const md_localise *m, md_suspect *sp, const rk *r, int n_cont,
                         bool need_ow, int *n_unexplained) {
  int best = r[0].id, rc = 0;
  double p = m->l_est[best];
  md_loc_candidate cb;
  cand_info(m, MD_LOC_LOSS, best, &cb);
  char fig[96];
  rc = ev_add(sp, fmt_dup("%s: the single fault that best explains both traces; it drops an "
                          "estimated %.1f%% of the packets crossing it (log-likelihood %.1f, %.1f "
                          "with no fault)",
                          cb.desc, 100 * p, nz(m->l_logl[best]), nz(m->l_null)));
  int lines = 0;
  *n_unexplained = 0;
  for (int k = 0; k < m->n_obs && rc == 0; k++) {
    const obs *o = &m->o[k];
    ostate st;
    cand_obs_ll(o, best, p, m->l_bg[best], &st);
    obs_figures(o, fig, sizeof fig);
    double sat = bin_ll(o->sent, o->recv, (double)o->recv / o->sent);
    if (sat - st.ll > UNEXPLAINED_LL && !st.rl) {
      (*n_unexplained)++;
      rc = ev_add(sp, fmt_dup("%s: %s, which this single fault does not explain (predicted "
                              "%.1f%%): a second problem, or a changing one",
                              o->label, fig, 100 * st.pred));
    } else if (st.rl) {
      rc = ev_add(sp, fmt_dup("%s: %s, more than the fault explains (predicted %.1f%%) and not "
                              "carried on: ICMP rate limiting at that router, not a link",
                              o->label, fig, 100 * st.pred));
    } else if (st.crossed && lines < MAX_OBS_LINES) {
      lines++;
      char how[96];
      if (best >= m->f.n + m->r.n)
        sfmt(how, sizeof how, "it is the probes' destination");
      else if (o->type == OBS_ONEWAY)
        sfmt(how, sizeof how, "the stream crosses it");
      else if (st.alt)
        sfmt(how, sizeof how,
             "its way crosses it only if that router routes otherwise than "
             "assumed");
      else
        sfmt(how, sizeof how, "%s crosses it", part_words(o->go, o->back, best));
      rc = ev_add(sp, fmt_dup("%s: %s, predicted %.1f%%: %s", o->label, fig, 100 * st.pred, how));
    } else if (o->type == OBS_ONEWAY || o->type == OBS_FOLLOW) {
      rc = ev_add(sp, fmt_dup("%s: %s, predicted %.1f%%: it does not cross the suspect", o->label,
                              fig, 100 * st.pred));
    }
  }
  const md_loc_candidate *c = &cb;
  if (rc == 0 && c->kind == MD_LOC_LINK) {
    const chain *ch = c->path == MD_DIR_FORWARD ? &m->f : &m->r;
    int k = pos_of_ttl(ch, c->to_ttl);
    if (k > 0 && ch->p[k].n_silent_before > 0)
      rc = ev_add(sp, fmt_dup("%s: %d hop%s between TTL %d and %d never answered: the fault is "
                              "on that stretch, before or after the silent hop%s",
                              c->path == MD_DIR_FORWARD ? "forward" : "reverse",
                              ch->p[k].n_silent_before, ch->p[k].n_silent_before == 1 ? "" : "s",
                              c->from_ttl, c->to_ttl, ch->p[k].n_silent_before == 1 ? "" : "s"));
  }
  for (int i = 1; i < m->nc && i < 4 && rc == 0; i++) {
    int alt = r[i].id;
    md_loc_candidate ca;
    cand_info(m, MD_LOC_LOSS, alt, &ca);
    double pa = m->l_est[alt], worst = 0;
    int wk = -1;
    ostate wst = {0};
    for (int k = 0; k < m->n_obs; k++) {
      ostate sb, sa;
      cand_obs_ll(&m->o[k], best, p, m->l_bg[best], &sb);
      cand_obs_ll(&m->o[k], alt, pa, m->l_bg[alt], &sa);
      if (sb.ll - sa.ll > worst) {
        worst = sb.ll - sa.ll;
        wk = k;
        wst = sa;
      }
    }
    char against[MD_ADDRSTRLEN + 240] = "";
    if (wk >= 0 && worst >= 1.0) {
      obs_figures(&m->o[wk], fig, sizeof fig);
      if (wst.alt)
        sfmt(against, sizeof against,
             "; against it: %s, %s, which it explains only if that router routes otherwise "
             "than assumed",
             m->o[wk].label, fig);
      else if (wst.rl)
        sfmt(against, sizeof against,
             "; against it: %s, %s, which it explains only as rate limiting there", m->o[wk].label,
             fig);
      else
        sfmt(against, sizeof against, "; against it: %s, %s where it predicts %.1f%%",
             m->o[wk].label, fig, 100 * wst.pred);
    }
    rc = ev_add(sp, fmt_dup("alternative: the %s explains it with log-likelihood %.1f "
                            "(delta %.1f, dropping %.1f%%)%s",
                            ca.desc, nz(r[i].ll), nz(r[0].ll - r[i].ll), 100 * pa, against));
  }
  if (rc == 0 && n_cont > 1)
    rc =
        ev_add(sp, fmt_dup(need_ow ? "the data cannot tell the %d suspects within %.1f of the best "
                                     "apart: loss in one direction of that link looks like loss in "
                                     "the other in both traces; a one-way measurement between the "
                                     "agents can tell"
                                   : "the data cannot tell the %d suspects within %.1f of the best "
                                     "apart: follow-up probes can (see the follow-up plan)",
                           n_cont, MD_LOCALISE_MARGIN));
  return rc;
}

/* The floor step a chain shows for a latency candidate, in words. */
static int evidence_latency_chain(const md_localise *m, md_suspect *sp, int c, int w) {
  const chain *ch = w == 0 ? &m->f : &m->r;
  const char *word = w == 0 ? "forward" : "reverse";
  cutopt o = m->d_cut[2 * c + w];
  char w2[MD_ADDRSTRLEN + 80];
  if (o.cut >= 1 && o.cut <= ch->n && step_at(m, ch, c, o, o.cut) > 0) {
    char w1[MD_ADDRSTRLEN + 80];
    pos_words(m, ch, o.cut - 1, w1, sizeof w1);
    pos_words(m, ch, o.cut, w2, sizeof w2);
    const obs *ob = &m->o[ch->p[o.cut].obs];
    return ev_add(sp, fmt_dup("%s: the RTT floor rises from %.1f ms at %s to %.1f ms at %s and "
                              "stays to the destination (%.1f ms average there); predicted "
                              "+%.1f ms: %s%s",
                              word, ch->fl[o.cut - 1], w1, ch->fl[o.cut], w2, ch->p[ch->n].avg_ms,
                              m->d_est[c],
                              c >= m->f.n + m->r.n ? "it is the probes' destination"
                              : o.alt ? "its way crosses it if the router routes otherwise than "
                                        "assumed"
                                      : part_words(ob->go, ob->back, c),
                              c >= m->f.n + m->r.n || o.alt ? "" : " crosses it"));
  }
  int at = 1;
  for (int i = 1; i <= ch->n; i++)
    if (ch->phi[i] > ch->phi[at])
      at = i;
  pos_words(m, ch, at, w2, sizeof w2);
  return ev_add(sp, fmt_dup("%s: no probe or reply of this trace crosses it; its largest floor "
                            "step is %.1f ms at %s",
                            word, ch->phi[at], w2));
}

/* Evidence for a latency suspect: the fitted delay, each trace's floor
 * step, the one-way delays, one-hop spikes, the alternatives. */
static int evidence_latency(const md_localise *m, md_suspect *sp, const rk *r, int n_cont,
                            bool need_ow) {
  int best = r[0].id;
  md_loc_candidate cb;
  cand_info(m, MD_LOC_LATENCY, best, &cb);
  int rc = ev_add(sp, fmt_dup("%s: adds an estimated %.1f ms to every packet crossing it, the "
                              "single delay that best explains both traces (a rise that stays "
                              "may also be distance on a long link)",
                              cb.desc, m->d_est[best]));
  for (int w = 0; w < 2 && rc == 0; w++)
    rc = evidence_latency_chain(m, sp, best, w);
  if (rc == 0 && m->have_owd)
    rc = ev_add(sp, fmt_dup("one-way delay: %s -> %s %.1f ms, %s -> %s %.1f ms: a difference of "
                            "%+.1f ms, predicted %+.1f ms",
                            m->a_name, m->b_name, m->ow_fwd_ms, m->b_name, m->a_name, m->ow_rev_ms,
                            m->ow_z, ow_sign(m, best) * m->d_est[best]));
  const chain *cs[2] = {&m->f, &m->r};
  for (int w = 0; w < 2 && rc == 0; w++)
    for (int i = 1; i < cs[w]->n && rc == 0; i++) {
      double spike = cs[w]->p[i].avg_ms - cs[w]->fl[i];
      if (spike > fmax(MD_LOCALISE_MIN_DELAY_MS, MD_LOCALISE_DELAY_SHARE * cs[w]->fl[i]))
        rc = ev_add(sp, fmt_dup("%s: averages %.1f ms while later hops answer in %.1f ms: a "
                                "slow ICMP answer at that router (one hop only), not a link",
                                m->o[cs[w]->p[i].obs].label, cs[w]->p[i].avg_ms, cs[w]->fl[i]));
    }
  for (int i = 1; i < m->nc && i < 4 && rc == 0; i++) {
    md_loc_candidate ca;
    cand_info(m, MD_LOC_LATENCY, r[i].id, &ca);
    rc = ev_add(sp, fmt_dup("alternative: the %s explains it with log-likelihood %.1f (delta "
                            "%.1f, adding %.1f ms)",
                            ca.desc, nz(r[i].ll), nz(r[0].ll - r[i].ll), m->d_est[r[i].id]));
  }
  if (rc == 0 && n_cont > 1)
    rc = ev_add(sp, fmt_dup(need_ow ? "the traces cannot tell the %d suspects within %.1f of "
                                      "the best apart: a round trip crosses both directions; "
                                      "one-way delay between the agents can tell"
                                    : "the data cannot tell the %d suspects within %.1f of the "
                                      "best apart",
                            n_cont, MD_LOCALISE_MARGIN));
  return rc;
}

/* One metric's conclusion: see localise.h. */
int md_localise_conclude_metric(const md_localise *m, md_loc_metric metric,
                                md_localise_verdict *v) {
  if (!m || !v || (metric != MD_LOC_LOSS && metric != MD_LOC_LATENCY))
    return -EINVAL;
  memset(v, 0, sizeof *v);
  v->metric = metric;
  rk *r = ranked(m, metric);
  if (!r)
    return -ENOMEM;
  int best = r[0].id, rc = 0;
  if (!is_finding(m, metric, best, NULL)) {
    free(r);
    return 0;
  }
  v->found = true;
  v->estimate = metric == MD_LOC_LOSS ? m->l_est[best] : m->d_est[best];
  v->delta_logl = m->nc > 1 ? r[0].ll - r[1].ll : INFINITY;
  for (int i = 0; i < m->nc; i++)
    if (r[0].ll - r[i].ll < MD_LOCALISE_MARGIN)
      v->n_contenders++;
  v->needs_followup = v->n_contenders > 1;
  rc = oneway_needed(m, metric, &v->needs_oneway);
  md_suspect *sp = &v->suspect;
  md_loc_candidate cb;
  cand_info(m, metric, best, &cb);
  sp->kind = metric == MD_LOC_LATENCY ? MD_SUSPECT_LATENCY
             : cb.kind == MD_LOC_HOST ? MD_SUSPECT_DESTINATION_HOST
                                      : MD_SUSPECT_LOSS;
  sp->path = cb.path;
  sp->from_ttl = cb.from_ttl;
  sp->to_ttl = cb.to_ttl;
  if (rc == 0 && cb.from_ip[0] && !(sp->from_ip = strdup(cb.from_ip)))
    rc = -ENOMEM;
  if (rc == 0 && cb.to_ip[0] && !(sp->to_ip = strdup(cb.to_ip)))
    rc = -ENOMEM;
  double conf = 1.0 / (1.0 + exp(-v->delta_logl));
  sp->confidence = conf > MD_LOCALISE_CONF_MAX ? MD_LOCALISE_CONF_MAX : conf;
  if (rc == 0)
    rc = metric == MD_LOC_LOSS
             ? evidence_loss(m, sp, r, v->n_contenders, v->needs_oneway, &v->n_unexplained)
             : evidence_latency(m, sp, r, v->n_contenders, v->needs_oneway);
  if (v->n_unexplained > 0)
    sp->confidence *= MD_LOCALISE_CONF_POOR_FIT;
  free(r);
  if (rc != 0)
    md_localise_verdict_clear(v);
  return rc;
}

/* Loss (or the destination host) first, then latency. */
int md_localise_conclude(const md_localise *m, md_localise_verdict *v) {
  int rc = md_localise_conclude_metric(m, MD_LOC_LOSS, v);
  if (rc != 0 || v->found)
    return rc;
  return md_localise_conclude_metric(m, MD_LOC_LATENCY, v);
}

/* Frees the suspect's strings. */
void md_localise_verdict_clear(md_localise_verdict *v) {
  if (!v)
    return;
  free(v->suspect.from_ip);
  free(v->suspect.to_ip);
  for (int i = 0; i < v->suspect.n_evidence; i++)
    free(v->suspect.evidence[i]);
  free(v->suspect.evidence);
  memset(v, 0, sizeof *v);
}
