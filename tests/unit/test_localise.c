/* Unit tests for localise: the joint two-way model, on traces simulated
 * from the lab's topologies with the lab's own routing tables
 * (tests/lab/lib.sh lab_build_diamond asym, lab_build_linear):
 *
 *   asym:   a -1- r1 -2- r2f -3- r3 -4- b,  r1 -5- r2r -6- r3
 *           a -> b over r2f: 198.18.1.2 198.18.2.2 198.18.3.2 198.18.4.2
 *           b -> a over r2r: 198.18.4.1 198.18.6.1 198.18.5.1 198.18.1.1
 *   linear: src -1- r1 -2- r2 -3- r3 -4- dst (both ways the same routers)
 *
 * A fault (loss or delay on one directional link, a destination dropping
 * probes, a router rate limiting or answering slowly, a silent router) is
 * simulated packet by packet path: every probe's way out and its reply's
 * way back follow the routing tables, so replies of forward probes cross
 * reverse-only links exactly as on the lab. Counts are the expected values
 * (deterministic) or seeded binomial draws. No network. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align.h"
#include "localise.h"

/* --- Topologies -------------------------------------------------------------- */

#define MAXN 8
#define MAXL 8

/* Nodes joined by numbered point-to-point links: link L joins left (side 1,
 * 198.18.L.1) and right (side 2, 198.18.L.2); nh: the next hop toward
 * link L's prefix, -1 when the node is on that link. Node 0 is agent A on
 * link 1 side 1, node `b` agent B on link 4 side 2. */
typedef struct topo {
  int n_nodes, n_links, b;
  const char *name[MAXN];
  int left[MAXL + 1], right[MAXL + 1];
  int nh[MAXN][MAXL + 1];
} topo;

enum { A_ = 0, R1 = 1, R2F = 2, R2R = 3, R3 = 4, B_ = 5 };

/* The asymmetric lab, its routes as lib.sh sets them. */
static topo asym_lab(void) {
  topo t;
  memset(&t, 0, sizeof t);
  t.n_nodes = 6;
  t.n_links = 6;
  t.b = B_;
  const char *names[] = {"a", "r1", "r2f", "r2r", "r3", "b"};
  for (int i = 0; i < 6; i++)
    t.name[i] = names[i];
  int l[7][2] = {{0, 0}, {A_, R1}, {R1, R2F}, {R2F, R3}, {R3, B_}, {R1, R2R}, {R2R, R3}};
  for (int L = 1; L <= 6; L++) {
    t.left[L] = l[L][0];
    t.right[L] = l[L][1];
  }
  for (int n = 0; n < 6; n++)
    for (int L = 1; L <= 6; L++)
      t.nh[n][L] = -1;
  for (int L = 2; L <= 6; L++)
    t.nh[A_][L] = R1;
  for (int L = 1; L <= 6; L++)
    if (L != 4)
      t.nh[B_][L] = R3;
  t.nh[R1][3] = R2F;
  t.nh[R1][4] = R2F;
  t.nh[R1][6] = R2R;
  t.nh[R2F][1] = R1;
  t.nh[R2F][4] = R3;
  t.nh[R2F][5] = R1;
  t.nh[R2F][6] = R3;
  t.nh[R2R][1] = R1;
  t.nh[R2R][4] = R3;
  t.nh[R2R][2] = R1;
  t.nh[R2R][3] = R3;
  t.nh[R3][2] = R2F;
  t.nh[R3][5] = R2R;
  t.nh[R3][1] = R2R;
  return t;
}

/* The linear lab: src r1 r2 r3 dst, routes along the line both ways. */
static topo linear_lab(void) {
  topo t;
  memset(&t, 0, sizeof t);
  t.n_nodes = 5;
  t.n_links = 4;
  t.b = 4;
  const char *names[] = {"src", "r1", "r2", "r3", "dst"};
  for (int i = 0; i < 5; i++)
    t.name[i] = names[i];
  for (int L = 1; L <= 4; L++) {
    t.left[L] = L - 1;
    t.right[L] = L;
  }
  for (int n = 0; n < 5; n++)
    for (int L = 1; L <= 4; L++)
      t.nh[n][L] = (L == n || L == n + 1) ? -1 : L > n ? n + 1 : n - 1;
  return t;
}

static bool on_link(const topo *t, int n, int L) {
  return t->left[L] == n || t->right[L] == n;
}

static int link_between(const topo *t, int u, int v) {
  for (int L = 1; L <= t->n_links; L++)
    if ((t->left[L] == u && t->right[L] == v) || (t->left[L] == v && t->right[L] == u))
      return L;
  fail_msg("no link between %d and %d", u, v);
  return -1;
}

/* The directional links from node `from` to the address (L, side). */
typedef struct route {
  int n;
  int u[16], v[16];
} route;

static route deliver(const topo *t, int from, int L, int side) {
  route r = {0};
  int owner = side == 1 ? t->left[L] : t->right[L], cur = from;
  while (cur != owner) {
    int next = on_link(t, cur, L) ? owner : t->nh[cur][L];
    assert_true(next >= 0 && r.n < 16);
    r.u[r.n] = cur;
    r.v[r.n++] = next;
    cur = next;
  }
  return r;
}

/* An agent's own address (A on link 1 side 1, B on link 4 side 2). */
static void agent_addr(const topo *t, int agent, int *L, int *side) {
  *L = agent == A_ ? 1 : 4;
  *side = agent == A_ ? 1 : 2;
  (void)t;
}

static void addr_text(int L, int side, char *buf, size_t len) {
  snprintf(buf, len, "198.18.%d.%d", L, side);
}

/* --- Faults and the simulator ------------------------------------------------ */

typedef struct sim {
  const topo *t;
  double loss[MAXN][MAXN];  /* directional link u -> v drops this share */
  double delay[MAXN][MAXN]; /* and adds this many ms */
  double host_drop[MAXN];   /* an agent drops this share of echo requests to itself */
  double rl[MAXN];          /* a router drops this share of the ICMP it would send */
  double spike[MAXN];       /* a router answers this many ms late */
  bool silent[MAXN];        /* a router never answers */
  double prop_ms;           /* every link, each way */
  double jitter_ms;         /* random mode: each reply +- this */
  uint32_t probes;          /* per hop */
  uint32_t oneway;          /* one-way packets per direction; 0 none */
  uint32_t pings;           /* per follow-up */
  bool random;
  uint64_t rng;
} sim;

static void sim_init(sim *s, const topo *t) {
  memset(s, 0, sizeof *s);
  s->t = t;
  s->prop_ms = 0.5;
  s->probes = 40;
  s->pings = 40;
}

/* splitmix64: reproducible draws from a seed. */
static double uniform(sim *s) {
  uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}

/* How many of n packets come back with probability q. */
static uint32_t draw(sim *s, uint32_t n, double q) {
  if (!s->random)
    return (uint32_t)lround(n * q);
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++)
    k += uniform(s) < q;
  return k;
}

/* Success probability and RTT of packets over a list of links. */
static void over(const sim *s, const route *r, double *q, double *ms) {
  for (int i = 0; i < r->n; i++) {
    *q *= 1.0 - s->loss[r->u[i]][r->v[i]];
    *ms += s->prop_ms + s->delay[r->u[i]][r->v[i]];
  }
}

/* One hop of a trace: recv of sent replies, each after rtt ms, from addr. */
static void put_hop(sim *s, md_path *p, int ttl, const char *addr, uint32_t recv, double rtt) {
  md_hop *h = md_path_hop(p, ttl);
  assert_non_null(h);
  md_addr a;
  assert_int_equal(md_addr_parse(addr, &a), 0);
  md_addr tgt;
  assert_int_equal(md_addr_parse(p->target, &tgt), 0);
  for (uint32_t c = 0; c < s->probes; c++) {
    md_stats_on_sent(&h->st);
    if (c >= recv) {
      md_stats_on_timeout(&h->st);
      continue;
    }
    double j = s->random ? (2 * uniform(s) - 1) * s->jitter_ms : 0;
    md_stats_on_reply(&h->st, (rtt + j) * 1000.0);
    assert_non_null(md_hop_add_host(h, &a, NULL, 0));
    if (md_addr_equal(&a, &tgt))
      p->reached = true;
  }
}

/* The trace from agent `from` to agent `to`, as the probe engine would
 * record it: TTL k meets the k-th router of the route (it answers from its
 * inbound interface), whose reply takes that router's own route back. */
static md_path *sim_trace(sim *s, int from, int to) {
  const topo *t = s->t;
  int tl, ts, fl, fs;
  agent_addr(t, to, &tl, &ts);
  agent_addr(t, from, &fl, &fs);
  char target[32];
  addr_text(tl, ts, target, sizeof target);
  md_path *p = md_path_new(from == A_ ? "local" : "cvm", target, to == A_ ? "local" : "cvm", 1);
  assert_non_null(p);
  route out = deliver(t, from, tl, ts);
  for (int k = 1; k <= out.n; k++) {
    int node = out.v[k - 1], L = link_between(t, out.u[k - 1], node);
    char addr[32];
    addr_text(L, t->left[L] == node ? 1 : 2, addr, sizeof addr);
    route req = {0}, rep = deliver(t, node, fl, fs);
    for (int i = 0; i < k; i++) {
      req.u[i] = out.u[i];
      req.v[i] = out.v[i];
    }
    req.n = k;
    double q = 1, ms = 0;
    over(s, &req, &q, &ms);
    over(s, &rep, &q, &ms);
    if (node == to) {
      q *= 1 - s->host_drop[node];
    } else {
      q *= 1 - s->rl[node];
      ms += s->spike[node];
      if (s->silent[node])
        q = 0;
    }
    put_hop(s, p, k, addr, draw(s, s->probes, q), ms);
  }
  p->complete = true;
  return p;
}

/* The one-way stream from agent `from` to the other. */
static md_oneway_dir sim_oneway(sim *s, int from, int to) {
  int L, side;
  agent_addr(s->t, to, &L, &side);
  route r = deliver(s->t, from, L, side);
  double q = 1, ms = 0;
  over(s, &r, &q, &ms);
  md_oneway_dir d = {0};
  d.sent = s->oneway;
  d.recv = draw(s, s->oneway, q);
  d.loss_pct = 100.0 * (d.sent - d.recv) / d.sent;
  d.delay_avg_ms = ms + (s->random ? (2 * uniform(s) - 1) * s->jitter_ms / 4 : 0);
  d.delay_stdev_ms = s->random ? s->jitter_ms : 0.1;
  return d;
}

/* A follow-up ping from an agent to an address: replies received. */
static uint32_t sim_ping(sim *s, int from, const char *target) {
  int L, side;
  assert_int_equal(sscanf(target, "198.18.%d.%d", &L, &side), 2);
  int owner = side == 1 ? s->t->left[L] : s->t->right[L];
  int fl, fs;
  agent_addr(s->t, from, &fl, &fs);
  route req = deliver(s->t, from, L, side), rep = deliver(s->t, owner, fl, fs);
  double q = 1, ms = 0;
  over(s, &req, &q, &ms);
  over(s, &rep, &q, &ms);
  if (owner == A_ || owner == s->t->b)
    q *= 1 - s->host_drop[owner];
  else
    q *= (1 - s->rl[owner]) * (s->silent[owner] ? 0 : 1);
  return draw(s, s->pings, q);
}

/* The model of a simulated run (one-way included when s->oneway). */
static md_localise *sim_model(sim *s, bool pass_alignment) {
  md_path *f = sim_trace(s, A_, s->t->b), *r = sim_trace(s, s->t->b, A_);
  md_oneway_dir ow_f, ow_r;
  if (s->oneway) {
    ow_f = sim_oneway(s, A_, s->t->b);
    ow_r = sim_oneway(s, s->t->b, A_);
  }
  md_alignment al = {0};
  if (pass_alignment)
    assert_int_equal(md_align(f, r, &al), 0);
  md_localise_input in = {.forward = f,
                          .reverse = r,
                          .alignment = pass_alignment ? &al : NULL,
                          .oneway_forward = s->oneway ? &ow_f : NULL,
                          .oneway_reverse = s->oneway ? &ow_r : NULL};
  md_localise *m = NULL;
  assert_int_equal(md_localise_new(&in, &m), 0);
  assert_non_null(m);
  md_alignment_clear(&al);
  md_path_free(f);
  md_path_free(r);
  return m;
}

/* Plan follow-ups, run them on the simulator, feed them back. Returns how
 * many were run. */
static int run_followups(sim *s, md_localise *m, int max) {
  md_followup_plan plan[16];
  int n = -1;
  assert_int_equal(md_localise_plan_followups(m, max, plan, &n), 0);
  for (int i = 0; i < n; i++) {
    int from = plan[i].from == MD_AGENT_A ? A_ : s->t->b;
    uint32_t recv = sim_ping(s, from, plan[i].target);
    assert_int_equal(md_localise_add_followup(m, plan[i].from, plan[i].target, s->pings, recv), 0);
  }
  return n;
}

/* --- Assertions ------------------------------------------------------------------ */

static void dump(const md_localise_verdict *v) {
  fprintf(stderr, "found %d kind %d path %d %d->%d conf %.3f delta %.2f cont %d fu %d ow %d\n",
          v->found, v->suspect.kind, v->suspect.path, v->suspect.from_ttl, v->suspect.to_ttl,
          v->suspect.confidence, v->delta_logl, v->n_contenders, v->needs_followup,
          v->needs_oneway);
  for (int i = 0; i < v->suspect.n_evidence; i++)
    fprintf(stderr, "  %s\n", v->suspect.evidence[i]);
}

static bool is_suspect(const md_localise_verdict *v, md_suspect_kind kind, md_dir path, int from,
                       int to) {
  return v->found && v->suspect.kind == kind && v->suspect.path == path &&
         v->suspect.from_ttl == from && v->suspect.to_ttl == to;
}

#define ASSERT_SUSPECT(v, kind, path, from, to)                                                    \
  do {                                                                                             \
    if (!is_suspect(v, kind, path, from, to)) {                                                    \
      dump(v);                                                                                     \
      fail_msg("expected suspect kind %d path %d %d->%d", kind, path, from, to);                   \
    }                                                                                              \
  } while (0)

static bool has_line(const md_localise_verdict *v, const char *needle) {
  for (int i = 0; i < v->suspect.n_evidence; i++)
    if (strstr(v->suspect.evidence[i], needle))
      return true;
  return false;
}

#define ASSERT_EVIDENCE(v, s)                                                                      \
  do {                                                                                             \
    if (!has_line(v, s)) {                                                                         \
      dump(v);                                                                                     \
      fail_msg("no evidence line with \"%s\"", s);                                                 \
    }                                                                                              \
  } while (0)

/* The top two candidates (loss) are these two links, within the margin. */
static void assert_top_two(const md_localise *m, md_loc_metric metric, md_dir p1, int f1, int t1,
                           md_dir p2, int f2, int t2) {
  md_loc_candidate c[3];
  assert_int_equal(md_localise_rank(m, metric, c, 3), 3);
  bool one = c[0].path == p1 && c[0].from_ttl == f1 && c[0].to_ttl == t1 && c[1].path == p2 &&
             c[1].from_ttl == f2 && c[1].to_ttl == t2;
  bool two = c[1].path == p1 && c[1].from_ttl == f1 && c[1].to_ttl == t1 && c[0].path == p2 &&
             c[0].from_ttl == f2 && c[0].to_ttl == t2;
  if (!one && !two)
    fail_msg("top two: %s (%.2f) / %s (%.2f)", c[0].desc, c[0].logl, c[1].desc, c[1].logl);
  assert_true(c[1].delta < MD_LOCALISE_MARGIN);
  assert_true(c[2].delta >= MD_LOCALISE_MARGIN);
}

/* Candidate ids on the asym lab: forward links 0..3 (a->r1, r1->r2f,
 * r2f->r3, r3->b), reverse links 4..7 (b->r3, r3->r2r, r2r->r1, r1->a),
 * the destination b 8, the destination a 9. */
enum { F1 = 0, F2, F3, F4, RV1, RV2, RV3, RV4, HOST_B, HOST_A };

/* --- Topology ------------------------------------------------------------------- */

static void test_lab_topology(void **state) {
  (void)state;
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  md_localise *m = sim_model(&s, true);
  assert_int_equal(md_localise_n_candidates(m), 10);
  md_loc_candidate c;
  assert_int_equal(md_localise_candidate(m, MD_LOC_LOSS, F1, &c), 0);
  assert_int_equal(c.path, MD_DIR_FORWARD);
  assert_int_equal(c.from_ttl, 0);
  assert_string_equal(c.from_ip, "198.18.1.1");
  assert_int_equal(c.to_ttl, 1);
  assert_string_equal(c.desc, "forward link local (198.18.1.1) -> hop 1 (198.18.1.2)");
  assert_int_equal(md_localise_candidate(m, MD_LOC_LOSS, RV3, &c), 0);
  assert_int_equal(c.path, MD_DIR_REVERSE);
  assert_int_equal(c.from_ttl, 2);
  assert_int_equal(c.to_ttl, 3);
  assert_string_equal(c.desc, "reverse link hop 2 (198.18.6.1) -> hop 3 (198.18.5.1)");
  assert_int_equal(md_localise_candidate(m, MD_LOC_LOSS, RV1, &c), 0);
  assert_string_equal(c.desc, "reverse link cvm (198.18.4.2) -> hop 1 (198.18.4.1)");
  assert_int_equal(md_localise_candidate(m, MD_LOC_LOSS, HOST_B, &c), 0);
  assert_int_equal(c.kind, MD_LOC_HOST);
  assert_int_equal(c.path, MD_DIR_FORWARD);
  assert_string_equal(c.to_ip, "198.18.4.2");
  assert_string_equal(c.desc, "destination cvm (198.18.4.2) itself");
  assert_int_equal(md_localise_candidate(m, MD_LOC_LOSS, HOST_A, &c), 0);
  assert_int_equal(c.path, MD_DIR_REVERSE);
  assert_string_equal(c.to_ip, "198.18.1.1");

  int code, part;
  /* a ping from A to r2r (found by B's trace): its reply crosses r2r -> r1
   * for certain; its request reaches r2r from r1 (assumed), possibly over
   * r2f and r3 */
  assert_int_equal(md_localise_crossing(m, MD_AGENT_A, "198.18.6.1", RV3, &code, &part), 0);
  assert_int_equal(code, 1);
  assert_int_equal(part, 2);
  assert_int_equal(md_localise_crossing(m, MD_AGENT_A, "198.18.6.1", F3, &code, &part), 0);
  assert_int_equal(code, 2);
  assert_int_equal(part, 1);
  assert_int_equal(md_localise_crossing(m, MD_AGENT_A, "198.18.6.1", F1, &code, NULL), 0);
  assert_int_equal(code, 1);
  /* a ping from B to r2f: the reply crosses r2f -> r3 for certain */
  assert_int_equal(md_localise_crossing(m, MD_AGENT_B, "198.18.2.2", F3, &code, &part), 0);
  assert_int_equal(code, 1);
  assert_int_equal(part, 2);
  assert_int_equal(md_localise_crossing(m, MD_AGENT_B, "198.18.2.2", RV3, &code, NULL), 0);
  assert_int_equal(code, 2);
  /* a trace hop's reply: r2f answers A back over r1 (assumed), so its
   * round trip meets r1 -> a but not r2r -> r1 for certain */
  assert_int_equal(md_localise_crossing(m, MD_AGENT_A, "198.18.2.2", RV4, &code, &part), 0);
  assert_int_equal(code, 1);
  assert_int_equal(part, 2);
  assert_int_equal(md_localise_crossing(m, MD_AGENT_A, "198.18.2.2", RV3, &code, NULL), 0);
  assert_int_equal(code, 2);
  /* r3 (forward hop 3, reverse hop 1) is one router: A's ping to it comes
   * back over r3 -> r2r -> r1 -> a */
  assert_int_equal(md_localise_crossing(m, MD_AGENT_A, "198.18.3.2", RV2, &code, &part), 0);
  assert_int_equal(code, 1);
  assert_int_equal(part, 2);
  assert_int_equal(md_localise_crossing(m, MD_AGENT_A, "198.18.4.1", RV1, &code, NULL), 0);
  assert_int_equal(code, 0);
  /* B's ping to A meets A's firewall and every reverse link */
  assert_int_equal(md_localise_crossing(m, MD_AGENT_B, "198.18.1.1", HOST_A, &code, &part), 0);
  assert_int_equal(code, 1);
  assert_int_equal(part, 1);
  assert_int_equal(md_localise_crossing(m, MD_AGENT_B, "198.18.1.1", F1, &code, &part), 0);
  assert_int_equal(code, 1);
  assert_int_equal(part, 2);
  /* errors */
  assert_int_equal(md_localise_crossing(m, MD_AGENT_A, "198.18.1.1", F1, &code, NULL), -EINVAL);
  assert_int_equal(md_localise_crossing(m, MD_AGENT_A, "198.18.99.1", F1, &code, NULL), -ENOENT);
  assert_int_equal(md_localise_crossing(m, MD_AGENT_A, "bogus", F1, &code, NULL), -EINVAL);
  assert_int_equal(md_localise_crossing(m, MD_AGENT_A, "198.18.6.1", 10, &code, NULL), -EINVAL);
  md_localise_free(m);

  /* the same model when it aligns the paths itself */
  m = sim_model(&s, false);
  assert_int_equal(md_localise_crossing(m, MD_AGENT_B, "198.18.2.2", F3, &code, NULL), 0);
  assert_int_equal(code, 1);
  md_localise_free(m);
}

/* --- Healthy and not-a-fault ---------------------------------------------------- */

static void test_healthy(void **state) {
  (void)state;
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.oneway = 400;
  md_localise *m = sim_model(&s, true);
  md_localise_verdict v;
  assert_int_equal(md_localise_conclude(m, &v), 0);
  assert_false(v.found);
  assert_int_equal(v.suspect.n_evidence, 0);
  md_followup_plan plan[4];
  int n = -1;
  assert_int_equal(md_localise_plan_followups(m, 4, plan, &n), 0);
  assert_int_equal(n, 0);
  md_localise_verdict_clear(&v);
  md_localise_free(m);

  /* one probe lost at the destination (1 of 10) is noise */
  s.probes = 10;
  s.oneway = 0;
  s.host_drop[B_] = 0.1;
  m = sim_model(&s, true);
  assert_int_equal(md_localise_conclude(m, &v), 0);
  assert_false(v.found);
  md_localise_free(m);
  /* three of 10 are not */
  s.host_drop[B_] = 0.3;
  m = sim_model(&s, true);
  assert_int_equal(md_localise_conclude(m, &v), 0);
  ASSERT_SUSPECT(&v, MD_SUSPECT_DESTINATION_HOST, MD_DIR_FORWARD, 3, 4);
  md_localise_verdict_clear(&v);
  md_localise_free(m);
}

static void test_rate_limiting(void **state) {
  (void)state;
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.rl[R2F] = 0.5;
  md_localise *m = sim_model(&s, true);
  md_localise_verdict v;
  assert_int_equal(md_localise_conclude(m, &v), 0);
  assert_false(v.found);
  md_loc_candidate c[2];
  assert_int_equal(md_localise_rank(m, MD_LOC_LOSS, c, 2), 2);
  assert_false(c[0].finding);
  md_localise_free(m);

  /* a rate-limiting router on both traces (r1), still nothing */
  s.rl[R1] = 0.4;
  m = sim_model(&s, true);
  assert_int_equal(md_localise_conclude(m, &v), 0);
  assert_false(v.found);
  md_localise_free(m);

  /* rate limiting at r2f (10%) on top of a real fault (30%) after it: r2f
   * loses less than r1 -> r2f would make it, so the fault is after r2f
   * (with 40 probes, 8 of 40 at r2f would still be a plausible sampling dip
   * of 30%: the model then keeps both, which is right) */
  s.rl[R1] = 0;
  s.rl[R2F] = 0.1;
  s.probes = 100;
  s.oneway = 400;
  s.loss[R2F][R3] = 0.3;
  m = sim_model(&s, true);
  assert_int_equal(md_localise_conclude(m, &v), 0);
  ASSERT_SUSPECT(&v, MD_SUSPECT_LOSS, MD_DIR_FORWARD, 2, 3);
  assert_false(v.needs_followup);
  ASSERT_EVIDENCE(&v, "forward hop 2 (198.18.2.2): 10 of 100 lost (10.0%), more than the fault "
                      "explains (predicted 0.5%) and not carried on: ICMP rate limiting at that "
                      "router, not a link");
  md_localise_verdict_clear(&v);
  md_localise_free(m);

  /* heavier rate limiting at r2f (50%) hides whether r1 -> r2f drops the
   * 30% too: the two stay contenders, and say so */
  s.rl[R2F] = 0.5;
  s.probes = 40;
  m = sim_model(&s, true);
  assert_int_equal(md_localise_conclude(m, &v), 0);
  assert_true(v.found);
  assert_true(v.needs_followup);
  assert_top_two(m, MD_LOC_LOSS, MD_DIR_FORWARD, 1, 2, MD_DIR_FORWARD, 2, 3);
  ASSERT_EVIDENCE(&v, "forward hop 2 (198.18.2.2): 20 of 40 lost (50.0%)");
  md_localise_verdict_clear(&v);
  md_localise_free(m);
}

/* --- Loss on one directional link ---------------------------------------------------- */

/* A forward-only link (r2f -> r3) and the reverse-only link r2r -> r1 look
 * the same in both traces on this lab: a forward probe past r2f loses, and
 * so does every reply that comes back over r2r; r1's reply to b goes over
 * r2f -> r3, so the reverse trace loses from r1 on as well. */
static void loss_pair(int u, int v, md_dir path, int from, int to) {
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.loss[u][v] = 0.3;
  md_localise *m = sim_model(&s, true);
  md_localise_verdict vd;
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  assert_true(vd.found);
  assert_int_equal(vd.metric, MD_LOC_LOSS);
  assert_true(vd.needs_followup);
  assert_false(vd.needs_oneway); /* pings can separate them */
  assert_int_equal(vd.n_contenders, 2);
  assert_true(fabs(vd.delta_logl) < 1e-9);
  assert_true(fabs(vd.suspect.confidence - 0.5) < 1e-9);
  assert_true(fabs(vd.estimate - 0.3) < 0.01);
  assert_top_two(m, MD_LOC_LOSS, MD_DIR_FORWARD, 2, 3, MD_DIR_REVERSE, 2, 3);
  ASSERT_EVIDENCE(&vd, "alternative: the ");
  ASSERT_EVIDENCE(&vd, "(delta 0.0, dropping 29.6%)"); /* 30% less the 0.5% background */
  ASSERT_EVIDENCE(&vd, "follow-up probes can");
  md_localise_verdict_clear(&vd);

  /* the plan: A pings r2r (its reply crosses r2r -> r1, its request not
   * r2f -> r3 on the assumed route) and B pings r2f (its reply crosses
   * r2f -> r3) */
  md_followup_plan plan[8];
  int n = 0;
  assert_int_equal(md_localise_plan_followups(m, 8, plan, &n), 0);
  assert_int_equal(n, 2);
  bool a_r2r = false, b_r2f = false;
  for (int i = 0; i < n; i++) {
    a_r2r |= plan[i].from == MD_AGENT_A && strcmp(plan[i].target, "198.18.6.1") == 0;
    b_r2f |= plan[i].from == MD_AGENT_B && strcmp(plan[i].target, "198.18.2.2") == 0;
    assert_non_null(strstr(plan[i].why, "no loss here would clear the "));
  }
  assert_true(a_r2r && b_r2f);
  assert_non_null(strstr(plan[0].why, "ping from "));

  /* feed the planned pings back: now the direction is known */
  assert_int_equal(run_followups(&s, m, 8), 2);
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  ASSERT_SUSPECT(&vd, MD_SUSPECT_LOSS, path, from, to);
  assert_false(vd.needs_followup);
  assert_true(vd.suspect.confidence > 0.95);
  assert_true(vd.delta_logl > 3);
  ASSERT_EVIDENCE(&vd, "ping from ");
  md_localise_verdict_clear(&vd);
  md_localise_free(m);

  /* or with the one-way stream instead */
  s.oneway = 400;
  m = sim_model(&s, true);
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  ASSERT_SUSPECT(&vd, MD_SUSPECT_LOSS, path, from, to);
  assert_false(vd.needs_followup);
  assert_true(vd.suspect.confidence > 0.95);
  ASSERT_EVIDENCE(&vd, path == MD_DIR_FORWARD ? "one-way stream local -> cvm: 120 of 400 lost"
                                              : "one-way stream cvm -> local: 120 of 400 lost");
  md_localise_verdict_clear(&vd);
  md_localise_free(m);
}

static void test_forward_only_link(void **state) {
  (void)state;
  loss_pair(R2F, R3, MD_DIR_FORWARD, 2, 3);
}

static void test_reverse_only_link(void **state) {
  (void)state;
  loss_pair(R2R, R1, MD_DIR_REVERSE, 2, 3);
}

/* An agent's access link, one direction or the other: both traces show
 * exactly the same in either case, and no ping can separate them (every
 * ping of that agent crosses both directions, no ping of the other agent
 * crosses either but to the agent itself); the one-way stream can. */
static void access_pair(int u, int v, md_dir path, int from, int to, md_dir p2, int f2, int t2) {
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.loss[u][v] = 0.3;
  md_localise *m = sim_model(&s, true);
  md_localise_verdict vd;
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  assert_true(vd.found);
  assert_true(vd.needs_followup);
  assert_true(vd.needs_oneway);
  assert_true(vd.suspect.confidence < 0.6);
  assert_top_two(m, MD_LOC_LOSS, path, from, to, p2, f2, t2);
  ASSERT_EVIDENCE(&vd, "a one-way measurement between the agents can tell");
  md_localise_verdict_clear(&vd);
  md_followup_plan plan[8];
  int n = -1;
  assert_int_equal(md_localise_plan_followups(m, 8, plan, &n), 0);
  assert_int_equal(n, 0);
  md_localise_free(m);

  s.oneway = 400;
  m = sim_model(&s, true);
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  ASSERT_SUSPECT(&vd, MD_SUSPECT_LOSS, path, from, to);
  assert_false(vd.needs_followup);
  assert_false(vd.needs_oneway);
  assert_true(vd.suspect.confidence > 0.95);
  md_localise_verdict_clear(&vd);
  md_localise_free(m);
}

static void test_a_access_link(void **state) {
  (void)state;
  access_pair(A_, R1, MD_DIR_FORWARD, 0, 1, MD_DIR_REVERSE, 3, 4);
  access_pair(R1, A_, MD_DIR_REVERSE, 3, 4, MD_DIR_FORWARD, 0, 1);
  /* the link leaving A is named by A's address */
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.loss[A_][R1] = 0.3;
  s.oneway = 400;
  md_localise *m = sim_model(&s, true);
  md_localise_verdict vd;
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  assert_string_equal(vd.suspect.from_ip, "198.18.1.1");
  assert_string_equal(vd.suspect.to_ip, "198.18.1.2");
  md_localise_verdict_clear(&vd);
  md_localise_free(m);
}

static void test_b_access_link(void **state) {
  (void)state;
  access_pair(R3, B_, MD_DIR_FORWARD, 3, 4, MD_DIR_REVERSE, 0, 1);
  access_pair(B_, R3, MD_DIR_REVERSE, 0, 1, MD_DIR_FORWARD, 3, 4);
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.loss[B_][R3] = 0.3;
  s.oneway = 400;
  md_localise *m = sim_model(&s, true);
  md_localise_verdict vd;
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  assert_int_equal(vd.suspect.from_ttl, 0);
  assert_string_equal(vd.suspect.from_ip, "198.18.4.2");
  assert_string_equal(vd.suspect.to_ip, "198.18.4.1");
  md_localise_verdict_clear(&vd);
  md_localise_free(m);
}

/* A destination that drops probes to itself: only that trace's last hop
 * loses (and the other agent's pings to it); not a link. */
static void test_destination_firewall(void **state) {
  (void)state;
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.host_drop[B_] = 0.3;
  md_localise *m = sim_model(&s, true);
  md_localise_verdict vd;
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  ASSERT_SUSPECT(&vd, MD_SUSPECT_DESTINATION_HOST, MD_DIR_FORWARD, 3, 4);
  assert_string_equal(vd.suspect.to_ip, "198.18.4.2");
  assert_string_equal(vd.suspect.from_ip, "198.18.3.2");
  assert_false(vd.needs_followup);
  assert_true(vd.suspect.confidence > 0.95);
  ASSERT_EVIDENCE(&vd, "destination cvm (198.18.4.2) itself: the single fault");
  ASSERT_EVIDENCE(&vd, "forward hop 4, the destination cvm (198.18.4.2): 12 of 40 lost (30.0%), "
                       "predicted 30.");
  md_localise_verdict_clear(&vd);
  md_localise_free(m);

  sim_init(&s, &t);
  s.host_drop[A_] = 0.3;
  m = sim_model(&s, true);
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  ASSERT_SUSPECT(&vd, MD_SUSPECT_DESTINATION_HOST, MD_DIR_REVERSE, 3, 4);
  assert_string_equal(vd.suspect.to_ip, "198.18.1.1");
  assert_false(vd.needs_followup);
  md_localise_verdict_clear(&vd);
  md_localise_free(m);

  /* both drop: no single fault fits; the model says so and its confidence
   * halves */
  sim_init(&s, &t);
  s.host_drop[A_] = 0.3;
  s.host_drop[B_] = 0.5;
  m = sim_model(&s, true);
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  assert_true(vd.found);
  assert_true(vd.n_unexplained >= 1);
  assert_true(vd.suspect.confidence <= 0.5 * MD_LOCALISE_CONF_MAX);
  ASSERT_EVIDENCE(&vd, "which this single fault does not explain");
  md_localise_verdict_clear(&vd);
  md_localise_free(m);
}

/* Loss on r1 -> r2f is told from the traces alone: r2f's own hop loses,
 * and r2r's hop does not. */
static void test_forward_link_from_traces(void **state) {
  (void)state;
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.loss[R1][R2F] = 0.3;
  md_localise *m = sim_model(&s, true);
  md_localise_verdict vd;
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  ASSERT_SUSPECT(&vd, MD_SUSPECT_LOSS, MD_DIR_FORWARD, 1, 2);
  ASSERT_EVIDENCE(&vd, "forward hop 2 (198.18.2.2): 12 of 40 lost (30.0%), predicted 30.");
  ASSERT_EVIDENCE(&vd, "its request crosses it");
  ASSERT_EVIDENCE(&vd, "reverse hop 3 (198.18.5.1): 12 of 40 lost (30.0%), predicted 30.");
  ASSERT_EVIDENCE(&vd, "its reply crosses it");
  /* those that could explain it only by r2f answering otherwise than
   * assumed stay behind by the route cost */
  assert_true(vd.delta_logl >= MD_LOCALISE_ROUTE_COST - 1e-6);
  md_localise_verdict_clear(&vd);
  /* and the follow-ups settle it */
  run_followups(&s, m, 8);
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  ASSERT_SUSPECT(&vd, MD_SUSPECT_LOSS, MD_DIR_FORWARD, 1, 2);
  assert_false(vd.needs_followup);
  md_localise_verdict_clear(&vd);
  md_localise_free(m);
}

/* Loss on r3 -> r2r (reverse hops 1 -> 2): the forward trace loses from r3
 * on (its replies cross it); r2f -> r3 explains that too if r2r answered b
 * over r2f, which only the follow-ups can rule out. */
static void test_pair_until_followups(void **state) {
  (void)state;
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.loss[R3][R2R] = 0.3;
  md_localise *m = sim_model(&s, true);
  md_localise_verdict vd;
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  ASSERT_SUSPECT(&vd, MD_SUSPECT_LOSS, MD_DIR_REVERSE, 1, 2);
  assert_true(vd.needs_followup);
  ASSERT_EVIDENCE(&vd, "alternative: the forward link hop 2 (198.18.2.2) -> hop 3 (198.18.3.2) "
                       "explains it with log-likelihood");
  ASSERT_EVIDENCE(&vd, "against it: reverse hop 2 (198.18.6.1), 12 of 40 lost (30.0%), which it "
                       "explains only if that router routes otherwise than assumed");
  md_localise_verdict_clear(&vd);
  int n = run_followups(&s, m, 8);
  assert_true(n >= 1);
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  ASSERT_SUSPECT(&vd, MD_SUSPECT_LOSS, MD_DIR_REVERSE, 1, 2);
  assert_false(vd.needs_followup);
  assert_true(vd.suspect.confidence > 0.95);
  md_localise_verdict_clear(&vd);
  md_localise_free(m);
}

/* The linear lab: every router is on both paths (link_mate alignment).
 * Loss on r2 -> r3 or on r3 -> r2 shows the same in both traces, and no
 * ping separates them: every round trip past that link crosses it both
 * ways. Only the one-way stream can. */
static void test_symmetric_link(void **state) {
  (void)state;
  topo t = linear_lab();
  for (int dir = 0; dir < 2; dir++) {
    sim s;
    sim_init(&s, &t);
    if (dir == 0)
      s.loss[2][3] = 0.3;
    else
      s.loss[3][2] = 0.3;
    md_localise *m = sim_model(&s, true);
    md_localise_verdict vd;
    assert_int_equal(md_localise_conclude(m, &vd), 0);
    assert_true(vd.found);
    assert_true(vd.needs_oneway);
    assert_top_two(m, MD_LOC_LOSS, MD_DIR_FORWARD, 2, 3, MD_DIR_REVERSE, 1, 2);
    md_followup_plan plan[8];
    int n = -1;
    assert_int_equal(md_localise_plan_followups(m, 8, plan, &n), 0);
    assert_int_equal(n, 0);
    md_localise_verdict_clear(&vd);
    md_localise_free(m);
    s.oneway = 400;
    m = sim_model(&s, true);
    assert_int_equal(md_localise_conclude(m, &vd), 0);
    if (dir == 0)
      ASSERT_SUSPECT(&vd, MD_SUSPECT_LOSS, MD_DIR_FORWARD, 2, 3);
    else
      ASSERT_SUSPECT(&vd, MD_SUSPECT_LOSS, MD_DIR_REVERSE, 1, 2);
    md_localise_verdict_clear(&vd);
    md_localise_free(m);
  }
}

/* A router that never answers: the suspect link spans it. */
static void test_silent_hop(void **state) {
  (void)state;
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.silent[R2F] = true;
  s.loss[R2F][R3] = 0.3;
  s.oneway = 400;
  md_localise *m = sim_model(&s, true);
  assert_int_equal(md_localise_n_candidates(m), 9);
  md_localise_verdict vd;
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  ASSERT_SUSPECT(&vd, MD_SUSPECT_LOSS, MD_DIR_FORWARD, 1, 3);
  assert_string_equal(vd.suspect.from_ip, "198.18.1.2");
  assert_string_equal(vd.suspect.to_ip, "198.18.3.2");
  ASSERT_EVIDENCE(&vd, "(across 1 hop that never answered)");
  ASSERT_EVIDENCE(&vd, "forward: 1 hop between TTL 1 and 3 never answered");
  md_localise_verdict_clear(&vd);
  md_localise_free(m);

  /* and a silent router alone is no fault */
  sim_init(&s, &t);
  s.silent[R2R] = true;
  m = sim_model(&s, true);
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  assert_false(vd.found);
  md_localise_free(m);
}

/* Several responders at one TTL: one hop, one observation; never paired. */
static void test_ecmp_hop(void **state) {
  (void)state;
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.host_drop[B_] = 0.3;
  md_path *f = sim_trace(&s, A_, B_), *r = sim_trace(&s, B_, A_);
  /* a second responder at forward TTL 2 (another router, same losses) */
  md_hop *h = md_path_hop(f, 2);
  md_addr other;
  assert_int_equal(md_addr_parse("198.18.7.2", &other), 0);
  assert_non_null(md_hop_add_host(h, &other, NULL, 0));
  md_localise_input in = {.forward = f, .reverse = r};
  md_localise *m = NULL;
  assert_int_equal(md_localise_new(&in, &m), 0);
  assert_int_equal(md_localise_n_candidates(m), 10);
  md_localise_verdict vd;
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  ASSERT_SUSPECT(&vd, MD_SUSPECT_DESTINATION_HOST, MD_DIR_FORWARD, 3, 4);
  int code;
  /* the second responder is a known address of forward hop 2 */
  assert_int_equal(md_localise_crossing(m, MD_AGENT_A, "198.18.7.2", F2, &code, NULL), 0);
  assert_int_equal(code, 1);
  md_localise_verdict_clear(&vd);
  md_localise_free(m);
  md_path_free(f);
  md_path_free(r);
}

/* --- Latency ------------------------------------------------------------------------ */

static void latency_pair(int u, int v, md_dir path, int from, int to) {
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.delay[u][v] = 40;
  md_localise *m = sim_model(&s, true);
  md_localise_verdict vd;
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  assert_true(vd.found);
  assert_int_equal(vd.metric, MD_LOC_LATENCY);
  assert_int_equal(vd.suspect.kind, MD_SUSPECT_LATENCY);
  assert_true(vd.needs_followup);
  assert_true(vd.needs_oneway);
  assert_true(fabs(vd.estimate - 40) < 0.5);
  assert_top_two(m, MD_LOC_LATENCY, MD_DIR_FORWARD, 2, 3, MD_DIR_REVERSE, 2, 3);
  ASSERT_EVIDENCE(&vd, "one-way delay between the agents can tell");
  md_localise_verdict_clear(&vd);
  /* no loss anywhere: nothing for the loss reading */
  assert_int_equal(md_localise_conclude_metric(m, MD_LOC_LOSS, &vd), 0);
  assert_false(vd.found);
  md_localise_free(m);

  s.oneway = 400;
  m = sim_model(&s, true);
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  ASSERT_SUSPECT(&vd, MD_SUSPECT_LATENCY, path, from, to);
  assert_false(vd.needs_followup);
  assert_true(vd.suspect.confidence > 0.95);
  ASSERT_EVIDENCE(&vd, "adds an estimated 40.0 ms");
  ASSERT_EVIDENCE(&vd, path == MD_DIR_FORWARD ? "a difference of +40.0 ms, predicted +40.0 ms"
                                              : "a difference of -40.0 ms, predicted -40.0 ms");
  ASSERT_EVIDENCE(&vd, "forward: the RTT floor rises from 2.0 ms at hop 2 (198.18.2.2) to 43.0 ms "
                       "at hop 3 (198.18.3.2) and stays to the destination (44.0 ms average "
                       "there); predicted +40.0 ms");
  ASSERT_EVIDENCE(&vd, "reverse: the RTT floor rises from 2.0 ms at hop 2 (198.18.6.1) to 43.0 ms "
                       "at hop 3 (198.18.5.1)");
  md_localise_verdict_clear(&vd);
  md_localise_free(m);
}

static void test_latency_forward_only(void **state) {
  (void)state;
  latency_pair(R2F, R3, MD_DIR_FORWARD, 2, 3);
}

static void test_latency_reverse_only(void **state) {
  (void)state;
  latency_pair(R2R, R1, MD_DIR_REVERSE, 2, 3);
}

/* A spike at one hop (slow ICMP at that router) is not a link; nor is
 * normal propagation. */
static void test_latency_spike(void **state) {
  (void)state;
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.spike[R2F] = 80;
  s.prop_ms = 2;
  s.oneway = 400;
  md_localise *m = sim_model(&s, true);
  md_localise_verdict vd;
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  assert_false(vd.found);
  md_loc_candidate c[1];
  assert_int_equal(md_localise_rank(m, MD_LOC_LATENCY, c, 1), 1);
  assert_false(c[0].finding);
  assert_true(c[0].estimate < MD_LOCALISE_MIN_DELAY_MS);
  md_localise_free(m);

  /* a spike on top of a real rise later on: the rise is found, the spike
   * is named as such */
  s.delay[R3][B_] = 60;
  m = sim_model(&s, true);
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  ASSERT_SUSPECT(&vd, MD_SUSPECT_LATENCY, MD_DIR_FORWARD, 3, 4);
  ASSERT_EVIDENCE(&vd, "forward hop 2 (198.18.2.2): averages 88.0 ms while later hops answer in "
                       "12.0 ms: a slow ICMP answer at that router");
  md_localise_verdict_clear(&vd);
  md_localise_free(m);
}

/* --- Errors --------------------------------------------------------------------- */

static void test_errors(void **state) {
  (void)state;
  md_localise *m = NULL;
  md_localise_input in = {0};
  assert_int_equal(md_localise_new(NULL, &m), -EINVAL);
  assert_int_equal(md_localise_new(&in, &m), -EINVAL);
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  md_path *f = sim_trace(&s, A_, B_), *r = sim_trace(&s, B_, A_);
  in.forward = f;
  assert_int_equal(md_localise_new(&in, &m), -EINVAL);
  /* a reverse trace that never reached A */
  s.loss[R1][A_] = 1.0;
  md_path *r_dead = sim_trace(&s, B_, A_);
  in.reverse = r_dead;
  assert_int_equal(md_localise_new(&in, &m), -ENODATA);
  assert_null(m);
  in.reverse = r;
  assert_int_equal(md_localise_new(&in, &m), 0);
  assert_int_equal(md_localise_add_followup(m, MD_AGENT_A, "198.18.6.1", 0, 0), -EINVAL);
  assert_int_equal(md_localise_add_followup(m, MD_AGENT_A, "198.18.6.1", 10, 11), -EINVAL);
  assert_int_equal(md_localise_add_followup(m, MD_AGENT_A, "198.18.1.1", 10, 10), -EINVAL);
  assert_int_equal(md_localise_add_followup(m, MD_AGENT_B, "198.18.4.2", 10, 10), -EINVAL);
  assert_int_equal(md_localise_add_followup(m, MD_AGENT_A, "203.0.113.9", 10, 10), -ENOENT);
  assert_int_equal(md_localise_add_followup(m, MD_AGENT_A, "x", 10, 10), -EINVAL);
  assert_int_equal(md_localise_add_followup(m, MD_AGENT_B, "198.18.1.1", 10, 10), 0);
  int n = 5;
  assert_int_equal(md_localise_plan_followups(m, 4, NULL, &n), -EINVAL);
  assert_int_equal(md_localise_plan_followups(m, 0, NULL, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(md_localise_rank(m, MD_LOC_LOSS, NULL, 0), 10);
  assert_int_equal(md_localise_rank(NULL, MD_LOC_LOSS, NULL, 0), -EINVAL);
  md_loc_candidate c;
  assert_int_equal(md_localise_candidate(m, MD_LOC_LOSS, 10, &c), -EINVAL);
  md_localise_verdict v;
  assert_int_equal(md_localise_conclude(NULL, &v), -EINVAL);
  assert_int_equal(md_localise_set_oneway(m, NULL, NULL), 0);
  md_localise_verdict_clear(NULL);
  md_localise_free(m);
  md_localise_free(NULL);
  md_path_free(f);
  md_path_free(r);
  md_path_free(r_dead);
}

/* --- Many seeds ------------------------------------------------------------------ */

typedef struct scenario {
  const char *name;
  void (*setup)(sim *s);
  bool followups; /* plan and run follow-ups before concluding */
  bool expect;    /* a suspect is expected */
  md_suspect_kind kind;
  md_dir path;
  int from, to;
} scenario;

/* The loss share of the seeded scenarios (the harder pass lowers it). */
static double g_loss = 0.3;

static void sc_f3(sim *s) {
  s->loss[R2F][R3] = g_loss;
}
static void sc_r3(sim *s) {
  s->loss[R2R][R1] = g_loss;
}
static void sc_f3_ow(sim *s) {
  sc_f3(s);
  s->oneway = 400;
}
static void sc_r3_ow(sim *s) {
  sc_r3(s);
  s->oneway = 400;
}
static void sc_f1_ow(sim *s) {
  s->loss[A_][R1] = g_loss;
  s->oneway = 400;
}
static void sc_r4_ow(sim *s) {
  s->loss[R1][A_] = g_loss;
  s->oneway = 400;
}
static void sc_f4_ow(sim *s) {
  s->loss[R3][B_] = g_loss;
  s->oneway = 400;
}
static void sc_r1_ow(sim *s) {
  s->loss[B_][R3] = g_loss;
  s->oneway = 400;
}
static void sc_f2(sim *s) {
  s->loss[R1][R2F] = g_loss;
}
static void sc_r2(sim *s) {
  s->loss[R3][R2R] = g_loss;
}
static void sc_host_b(sim *s) {
  s->host_drop[B_] = g_loss;
}
static void sc_host_a(sim *s) {
  s->host_drop[A_] = g_loss;
}
static void sc_rl(sim *s) {
  s->rl[R2F] = g_loss;
}
static void sc_healthy(sim *s) {
  s->oneway = 400;
}
static void sc_background(sim *s) {
  /* 0.2% on every link both ways: background, not a fault */
  for (int u = 0; u < MAXN; u++)
    for (int v = 0; v < MAXN; v++)
      s->loss[u][v] = 0.002;
}
static void sc_lat_f3(sim *s) {
  s->delay[R2F][R3] = 40;
  s->jitter_ms = 2;
  s->oneway = 400;
}
static void sc_lat_r3(sim *s) {
  s->delay[R2R][R1] = 40;
  s->jitter_ms = 2;
  s->oneway = 400;
}
static void sc_spike(sim *s) {
  s->spike[R2F] = 80;
  s->jitter_ms = 2;
  s->oneway = 400;
}

/* Run every scenario over `seeds` seeds; counts right, told apart (right
 * and needing nothing more), and wrong while sure (a wrong suspect with
 * no follow-up or one-way asked for). */
typedef struct tally {
  int right, apart, wrong_sure;
} tally;

static tally run_seeds(const topo *t, const scenario *sc, size_t k, int seeds, uint32_t probes) {
  tally r = {0};
  for (int seed = 1; seed <= seeds; seed++) {
    sim s;
    sim_init(&s, t);
    s.probes = probes;
    s.random = true;
    s.rng = (uint64_t)seed * 7919u + k * 104729u + probes;
    sc->setup(&s);
    md_localise *m = sim_model(&s, true);
    if (sc->followups)
      run_followups(&s, m, 6);
    md_localise_verdict v;
    assert_int_equal(md_localise_conclude(m, &v), 0);
    bool hit = sc->expect ? is_suspect(&v, sc->kind, sc->path, sc->from, sc->to) : !v.found;
    r.right += hit;
    r.apart += hit && (!sc->expect || !v.needs_followup);
    r.wrong_sure += !hit && v.found && !v.needs_followup && !v.needs_oneway;
    md_localise_verdict_clear(&v);
    md_localise_free(m);
  }
  return r;
}

static void test_random_seeds(void **state) {
  (void)state;
  const scenario sc[] = {
      {"forward-only link r2f->r3, one-way", sc_f3_ow, false, true, MD_SUSPECT_LOSS, MD_DIR_FORWARD,
       2, 3},
      {"reverse-only link r2r->r1, one-way", sc_r3_ow, false, true, MD_SUSPECT_LOSS, MD_DIR_REVERSE,
       2, 3},
      {"forward-only link r2f->r3, follow-ups", sc_f3, true, true, MD_SUSPECT_LOSS, MD_DIR_FORWARD,
       2, 3},
      {"reverse-only link r2r->r1, follow-ups", sc_r3, true, true, MD_SUSPECT_LOSS, MD_DIR_REVERSE,
       2, 3},
      {"link r1->r2f, follow-ups", sc_f2, true, true, MD_SUSPECT_LOSS, MD_DIR_FORWARD, 1, 2},
      {"link r3->r2r, follow-ups", sc_r2, true, true, MD_SUSPECT_LOSS, MD_DIR_REVERSE, 1, 2},
      {"a->r1, one-way", sc_f1_ow, false, true, MD_SUSPECT_LOSS, MD_DIR_FORWARD, 0, 1},
      {"r1->a, one-way", sc_r4_ow, false, true, MD_SUSPECT_LOSS, MD_DIR_REVERSE, 3, 4},
      {"r3->b, one-way", sc_f4_ow, false, true, MD_SUSPECT_LOSS, MD_DIR_FORWARD, 3, 4},
      {"b->r3, one-way", sc_r1_ow, false, true, MD_SUSPECT_LOSS, MD_DIR_REVERSE, 0, 1},
      {"destination b drops probes", sc_host_b, false, true, MD_SUSPECT_DESTINATION_HOST,
       MD_DIR_FORWARD, 3, 4},
      {"destination a drops probes", sc_host_a, false, true, MD_SUSPECT_DESTINATION_HOST,
       MD_DIR_REVERSE, 3, 4},
      {"rate limiting at r2f", sc_rl, false, false, 0, 0, 0, 0},
      {"healthy", sc_healthy, false, false, 0, 0, 0, 0},
      {"background loss 0.2%/link", sc_background, false, false, 0, 0, 0, 0},
      {"latency r2f->r3 +40 ms, one-way", sc_lat_f3, false, true, MD_SUSPECT_LATENCY,
       MD_DIR_FORWARD, 2, 3},
      {"latency r2r->r1 +40 ms, one-way", sc_lat_r3, false, true, MD_SUSPECT_LATENCY,
       MD_DIR_REVERSE, 2, 3},
      {"latency spike at r2f", sc_spike, false, false, 0, 0, 0, 0},
  };
  const int seeds = 200;
  const size_t n_sc = sizeof sc / sizeof sc[0];
  topo t = asym_lab();
  bool ok = true;
  printf("  40 probes per hop, 30%% loss, %d seeds:\n", seeds);
  for (size_t k = 0; k < n_sc; k++) {
    tally r = run_seeds(&t, &sc[k], k, seeds, 40);
    printf("  %-40s %3d/%d right (%5.1f%%), %3d told apart, %d wrong but sure\n", sc[k].name,
           r.right, seeds, 100.0 * r.right / seeds, r.apart, r.wrong_sure);
    if (r.right < 0.95 * seeds || r.wrong_sure > seeds / 50)
      ok = false;
  }
  /* harder: fewer probes, less loss. Not always right, but when the model
   * is sure (no follow-up, no one-way asked for) it must be right. */
  const struct {
    uint32_t probes;
    double loss;
  } hard[] = {{10, 0.3}, {40, 0.1}, {20, 0.05}};
  for (size_t h = 0; h < sizeof hard / sizeof hard[0]; h++) {
    g_loss = hard[h].loss;
    printf("  %u probes per hop, %.0f%% loss:\n", hard[h].probes, 100 * hard[h].loss);
    for (size_t k = 0; k < n_sc; k++) {
      if (sc[k].kind == MD_SUSPECT_LATENCY || !sc[k].expect)
        continue;
      tally r = run_seeds(&t, &sc[k], k, seeds, hard[h].probes);
      printf("  %-40s %3d/%d right (%5.1f%%), %3d told apart, %d wrong but sure\n", sc[k].name,
             r.right, seeds, 100.0 * r.right / seeds, r.apart, r.wrong_sure);
      if (r.wrong_sure > seeds / 50)
        ok = false;
    }
  }
  g_loss = 0.3;
  /* the pair that looks identical: from the traces alone it is never
   * claimed as told apart */
  const scenario pair = {"r2f->r3, traces only", sc_f3,          false, true,
                         MD_SUSPECT_LOSS,        MD_DIR_FORWARD, 2,     3};
  tally r = run_seeds(&t, &pair, 99, seeds, 40);
  printf("  %-40s %3d/%d named first, %d told apart (must be 0)\n", pair.name, r.right, seeds,
         r.apart);
  if (r.apart > 0)
    ok = false;
  assert_true(ok);
}

/* --- Confidence ---------------------------------------------------------------- */

/* The confidence is the logistic of the log-likelihood lead over the
 * runner-up, capped. */
static void test_confidence_mapping(void **state) {
  (void)state;
  topo t = asym_lab();
  sim s;
  sim_init(&s, &t);
  s.probes = 10;
  s.loss[R1][R2F] = 0.3;
  md_localise *m = sim_model(&s, true);
  md_localise_verdict vd;
  assert_int_equal(md_localise_conclude(m, &vd), 0);
  assert_true(vd.found);
  double want = 1 / (1 + exp(-vd.delta_logl));
  if (want > MD_LOCALISE_CONF_MAX)
    want = MD_LOCALISE_CONF_MAX;
  assert_true(fabs(vd.suspect.confidence - want) < 1e-12);
  md_loc_candidate c[2];
  assert_int_equal(md_localise_rank(m, MD_LOC_LOSS, c, 2), 2);
  assert_true(fabs(c[1].delta - vd.delta_logl) < 1e-9);
  assert_true(c[0].gain >= MD_LOCALISE_MIN_GAIN);
  md_localise_verdict_clear(&vd);
  md_localise_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lab_topology),
      cmocka_unit_test(test_healthy),
      cmocka_unit_test(test_rate_limiting),
      cmocka_unit_test(test_forward_only_link),
      cmocka_unit_test(test_reverse_only_link),
      cmocka_unit_test(test_a_access_link),
      cmocka_unit_test(test_b_access_link),
      cmocka_unit_test(test_destination_firewall),
      cmocka_unit_test(test_forward_link_from_traces),
      cmocka_unit_test(test_pair_until_followups),
      cmocka_unit_test(test_symmetric_link),
      cmocka_unit_test(test_silent_hop),
      cmocka_unit_test(test_ecmp_hop),
      cmocka_unit_test(test_latency_forward_only),
      cmocka_unit_test(test_latency_reverse_only),
      cmocka_unit_test(test_latency_spike),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_confidence_mapping),
      cmocka_unit_test(test_random_seeds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
