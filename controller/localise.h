/* localise: the joint two-way model. Reads the forward trace (A -> B), the
 * reverse trace (B -> A), their alignment, the one-way stream between the
 * agents and follow-up pings together, and names the one directional link
 * (or the destination host) whose fault explains them best, with the
 * direction of travel that is faulty.
 *
 * Why: a probe to forward hop k crosses the forward links up to k, and its
 * reply comes back over the path from that router to A, a suffix of the
 * reverse path. Loss on a reverse-only link therefore shows in the forward
 * trace too, and the two single-ended readings disagree. This model
 * predicts, for every candidate fault, what each hop of both traces should
 * show, scores the candidates by likelihood and says which of them the data
 * cannot tell apart, and which extra probes would.
 *
 * The model (docs/localisation.md has the details and every assumption):
 *   topology    both paths' answering hops, joined where the alignment
 *               (same_ip, gateway, link_mate) or the access-link assumption
 *               says two hops are one router. Each probe's way out and its
 *               reply's way back is a set of directional links, "for
 *               certain" or "only if the router routes otherwise than
 *               assumed" (the unknown part of an asymmetric path).
 *   candidates  every directional link of both paths (segments between
 *               consecutive answering hops), and each trace's destination
 *               host (it drops probes to itself).
 *   loss        binomial likelihood of every hop (recv of sent), one-way
 *               stream and follow-up ping; the candidate's loss share is
 *               its maximum-likelihood estimate; a router's hop may be rate
 *               limited (a per-hop nuisance at a fixed cost).
 *   latency     the same topology with each path's RTT floor (spikes at one
 *               hop vanish); a candidate adds d ms to every packet crossing
 *               it; d by least squares; one-way delays separate direction.
 *
 * Pure computation, no I/O. Errors are 0 or a negative errno.
 */
#ifndef MD_LOCALISE_H
#define MD_LOCALISE_H

#include <stdbool.h>
#include <stdint.h>

#include "md_addr.h"
#include "md_path.h"
#include "md_report.h"

/* Background loss every round trip shows without any fault, fitted in
 * every model (the healthy one included) between these two shares: loss
 * spread evenly over everything is no link's fault. */
#define MD_LOCALISE_BG_LOSS 0.005
#define MD_LOCALISE_BG_MAX 0.03
/* Log-likelihood cost of calling a router's hop (or a ping to a router)
 * rate limited: the loss there is more than the fault explains. */
#define MD_LOCALISE_RL_COST 3.0
/* Log-likelihood cost of a route other than the assumed one for a router
 * that only one trace saw (its reply joins the other path elsewhere). */
#define MD_LOCALISE_ROUTE_COST 1.5
/* A finding beats the healthy model (background loss only, no delay) by at
 * least this log-likelihood... */
#define MD_LOCALISE_MIN_GAIN 4.0
/* ...and drops at least this share of the packets crossing it. */
#define MD_LOCALISE_MIN_LOSS 0.02
/* Candidates within this log-likelihood of the best are not told apart. */
#define MD_LOCALISE_MARGIN 3.0
/* A latency finding adds more than max(MIN_DELAY_MS, DELAY_SHARE times the
 * RTT level before it) (the verdict's rule for a rise that counts). */
#define MD_LOCALISE_MIN_DELAY_MS 10.0
#define MD_LOCALISE_DELAY_SHARE 0.5
/* Spread allowed for a floor step with no fault: max(SIGMA_MS, SIGMA_SHARE
 * of the level before), plus the measurement error of the averages. */
#define MD_LOCALISE_LAT_SIGMA_MS 2.0
#define MD_LOCALISE_LAT_SIGMA_SHARE 0.05
/* Confidence never exceeds this. */
#define MD_LOCALISE_CONF_MAX 0.99
/* Confidence is multiplied by this when the single fault leaves some
 * observation unexplained (two problems, or one that changed during the run). */
#define MD_LOCALISE_CONF_POOR_FIT 0.5

typedef struct md_localise md_localise;

/* Which agent: A runs the forward trace, B the reverse one. */
typedef enum md_agent_side { MD_AGENT_A = 0, MD_AGENT_B = 1 } md_agent_side;

/* The two separate readings. */
typedef enum md_loc_metric { MD_LOC_LOSS = 0, MD_LOC_LATENCY = 1 } md_loc_metric;

/* A candidate is a directional link, or a trace's destination host. */
typedef enum md_loc_kind { MD_LOC_LINK = 0, MD_LOC_HOST = 1 } md_loc_kind;

typedef struct md_localise_input {
  const md_path *forward; /* A -> B; must have reached B */
  const md_path *reverse; /* B -> A; must have reached A */
  /* NULL: computed here with md_align(). */
  const md_alignment *alignment;
  /* The agents' own addresses (the link leaving the source, follow-up
   * targets). NULL: A = reverse->target, B = forward->target. */
  const char *a_address, *b_address;
  /* The agent-to-agent stream; NULL (or sent 0): none. */
  const md_oneway_dir *oneway_forward, *oneway_reverse;
} md_localise_input;

/* One candidate with its fit, as md_localise_rank() lists them. */
typedef struct md_loc_candidate {
  int id; /* stable within one model */
  md_loc_kind kind;
  md_dir path;          /* the direction of travel (a host: the trace it ends) */
  int from_ttl, to_ttl; /* hops of that path; from_ttl 0: the source agent */
  char from_ip[MD_ADDRSTRLEN], to_ip[MD_ADDRSTRLEN]; /* "" when unknown */
  char desc[192];  /* "forward link hop 2 (198.18.2.2) -> hop 3 (198.18.3.2)" */
  double estimate; /* loss: share dropped (0..1); latency: ms added */
  double logl;     /* maximum log-likelihood (constants dropped) */
  double gain;     /* logl minus the healthy model's */
  double delta;    /* the best candidate's logl minus this one's */
  bool finding;    /* above noise by the MIN_* rules */
} md_loc_candidate;

/* What the model concludes. */
typedef struct md_localise_verdict {
  bool found;           /* a suspect; false: healthy by this model */
  md_loc_metric metric; /* loss (kind loss or destination_host) or latency */
  md_suspect suspect;   /* when found; strings malloc'd (md_localise_verdict_clear) */
  double estimate;      /* the suspect's loss share or added delay (ms) */
  double delta_logl;    /* best minus runner-up */
  int n_contenders;     /* candidates within MD_LOCALISE_MARGIN of the best, it included */
  bool needs_followup;  /* n_contenders > 1: the data cannot tell them apart */
  bool needs_oneway;    /* some contenders differ only in what the one-way stream sees,
                           and no ping separates them; the stream is not in yet */
  int n_unexplained;    /* observations the single fault leaves unexplained */
} md_localise_verdict;

/* A probe that would separate candidates the data cannot tell apart. */
typedef struct md_followup_plan {
  md_agent_side from;
  char target[MD_ADDRSTRLEN]; /* an address one of the traces found (or an agent's) */
  char why[512];
} md_followup_plan;

/* Build the model from both traces and fit it. 0; -EINVAL (NULL, or no
 * forward/reverse path); -ENODATA (a path did not reach its destination,
 * or an agent address is unknown); -ENOMEM. */
int md_localise_new(const md_localise_input *in, md_localise **out);

/* Frees the model. NULL is fine. */
void md_localise_free(md_localise *m);

/* Replace the one-way measurements (NULL: none) and refit. 0 or -ENOMEM. */
int md_localise_set_oneway(md_localise *m, const md_oneway_dir *forward,
                           const md_oneway_dir *reverse);

/* The candidates best first, at most max of them into out; returns how many
 * (the number of candidates when out is NULL), or -EINVAL. */
int md_localise_rank(const md_localise *m, md_loc_metric metric, md_loc_candidate *out, int max);

/* The suspect: a loss (or destination host) finding first, else a latency
 * finding, else none. v is filled (clear it with md_localise_verdict_clear).
 * 0, -EINVAL, -ENOMEM. */
int md_localise_conclude(const md_localise *m, md_localise_verdict *v);

/* The same for one metric only. */
int md_localise_conclude_metric(const md_localise *m, md_loc_metric metric, md_localise_verdict *v);

/* Frees the suspect's strings and zeroes v. NULL is fine. */
void md_localise_verdict_clear(md_localise_verdict *v);

/* Probes that would separate the loss contenders: from A or B, to an address
 * a trace found, each with why. At most max_probes into out, *n set. 0 (also
 * with *n 0: nothing to separate, or no ping can; see needs_oneway),
 * -EINVAL. */
int md_localise_plan_followups(const md_localise *m, int max_probes, md_followup_plan *out, int *n);

/* A follow-up ping's result: `sent` echo requests from `from` to `target`
 * (an address of either trace, or the other agent), `recv` replies. Added
 * as an observation and the model refit. 0; -EINVAL (bad counts, target is
 * the sender); -ENOENT (target not in the topology); -ENOMEM. */
int md_localise_add_followup(md_localise *m, md_agent_side from, const char *target, uint32_t sent,
                             uint32_t recv);

/* How a ping from `from` to `target` meets candidate `id`: 0 it does not
 * cross it, 1 it does for certain, 2 only if a router routes otherwise than
 * assumed. *part: 1 the request, 2 the reply, 3 both (NULL: not wanted).
 * 0 or -EINVAL / -ENOENT / -ENOMEM. For tests and for explaining a plan. */
int md_localise_crossing(const md_localise *m, md_agent_side from, const char *target, int id,
                         int *code, int *part);

/* The number of candidates (links of both paths and the two hosts). */
int md_localise_n_candidates(const md_localise *m);

/* One candidate's description and fit for a metric (id 0..n-1). 0 or -EINVAL. */
int md_localise_candidate(const md_localise *m, md_loc_metric metric, int id,
                          md_loc_candidate *out);

#endif
