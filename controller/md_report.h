/* md_report: one diagnosis, as the report contract (CONTRACT.md, "The
 * report") describes it: both paths, their alignment, each direction's
 * verdict, the one-way figures, follow-up probes and the diagnosis.
 *
 * Filled by the orchestration (diagnose), read by the renderers (text, json,
 * markdown, html) and stored by the history. All strings are malloc'd and
 * owned by the report; md_report_free releases everything.
 */
#ifndef MD_REPORT_H
#define MD_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "md_path.h"

#define MD_REPORT_SCHEMA "mtrdiag.report.v1"

typedef struct md_report_agent {
  bool present;     /* false: B is a plain address, no agent */
  char *name;
  char *address;    /* control address "host:port" */
  char *probe_address;
  char *hostname;   /* from HelloAck; NULL when unknown */
  char *version;
  double clock_offset_ms; /* agent clock - controller clock */
} md_report_agent;

typedef struct md_report_options {
  char protocol[8]; /* "icmp" | "udp" | "tcp" */
  int cycles;
  int interval_ms;
  int psize;
  int first_ttl;
  int max_ttl;
  int port;     /* 0: default */
  int tos;
  bool no_dns;
  int family;   /* 0, 4 or 6 */
} md_report_options;

/* Where loss (or latency) begins, by the operators' procedure (docs/verdict.md). */
typedef enum md_segment {
  MD_SEG_NONE = 0,
  MD_SEG_DESTINATION_HOST,
  MD_SEG_LOCAL_ISP,
  MD_SEG_TRANSIT,
  MD_SEG_DESTINATION_ISP,
} md_segment;

/* PATH.verdict: the single-direction reading of one path. */
typedef struct md_path_verdict {
  bool present;
  double destination_loss_pct;
  int first_loss_ttl;   /* 0: null */
  char *first_loss_ip;  /* NULL: null */
  md_segment segment;
  int n_rate_limited;
  int *rate_limited_ttls;
  int latency_jump_ttl; /* 0: null */
  char *text;
} md_path_verdict;

typedef struct md_align_pair {
  int forward_ttl, reverse_ttl;
  char how[16]; /* "same_ip" | "link_mate" */
} md_align_pair;

typedef struct md_alignment {
  bool asymmetric;
  int n_shared;
  md_align_pair *shared;
  int n_forward_only;
  int *forward_only_ttls;
  int n_reverse_only;
  int *reverse_only_ttls;
} md_alignment;

typedef struct md_oneway_dir {
  uint32_t sent, recv;
  double loss_pct;
  double delay_avg_ms, delay_stdev_ms;
} md_oneway_dir;

typedef struct md_followup {
  char *from;     /* agent name */
  char *target;   /* numeric address */
  char protocol[8];
  uint32_t sent, recv;
  double loss_pct, avg_ms;
  char *why;
} md_followup;

typedef enum md_suspect_kind {
  MD_SUSPECT_LOSS = 0,
  MD_SUSPECT_LATENCY,
  MD_SUSPECT_DESTINATION_HOST,
  MD_SUSPECT_UNREACHABLE,
} md_suspect_kind;

typedef enum md_dir { MD_DIR_FORWARD = 0, MD_DIR_REVERSE = 1 } md_dir;

typedef struct md_suspect {
  md_suspect_kind kind;
  md_dir path;      /* the direction of travel that is faulty */
  char *from_ip, *to_ip;
  int from_ttl, to_ttl; /* from_ttl 0: the link leaving the source */
  double confidence;    /* 0..1 */
  int n_evidence;
  char **evidence;
} md_suspect;

typedef struct md_rate_limited {
  md_dir path;
  int ttl;
  char *ip;
} md_rate_limited;

typedef enum md_status {
  MD_STATUS_HEALTHY = 0,
  MD_STATUS_DEGRADED,
  MD_STATUS_UNREACHABLE,
  MD_STATUS_INCOMPLETE,
} md_status;

typedef enum md_direction {
  MD_DIRECTION_NONE = 0,
  MD_DIRECTION_FORWARD,
  MD_DIRECTION_REVERSE,
  MD_DIRECTION_BOTH,
} md_direction;

typedef struct md_diagnosis {
  md_status status;
  md_direction direction;
  bool has_suspect;
  md_suspect suspect;
  int n_rate_limited;
  md_rate_limited *rate_limited;
  char *summary;
  int n_advice;
  char **advice;
} md_diagnosis;

typedef struct md_report_error {
  char *agent; /* agent name, or NULL for the controller itself */
  char *code;  /* "unreachable", "tls_unknown_ca", "run_failed", ... */
  char *message;
} md_report_error;

typedef struct md_report {
  char id[40];
  int64_t started_at_ns, finished_at_ns; /* realtime */
  char *ran_by;        /* controller certificate name / user */
  md_report_options options;
  md_report_agent a, b;
  bool has_skew;
  double start_skew_ms;
  md_path *forward;    /* A -> B; NULL when A's run produced nothing */
  md_path *reverse;    /* B -> A; NULL when B is no agent or produced nothing */
  md_path_verdict forward_verdict, reverse_verdict;
  md_alignment alignment;
  bool has_oneway;
  md_oneway_dir oneway_forward, oneway_reverse;
  int n_followup;
  md_followup *followup;
  md_diagnosis diagnosis;
  int n_errors;
  md_report_error *errors;
} md_report;

md_report *md_report_new(void);
void md_report_free(md_report *r);
/* A new random id ("20261129T021000Z-1a2b3c"): sortable, unique enough. */
void md_report_new_id(md_report *r);
/* Append an error entry (strings copied). 0 or -ENOMEM. */
int md_report_add_error(md_report *r, const char *agent, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Names used in JSON and text. */
const char *md_segment_name(md_segment s);
const char *md_status_name(md_status s);
const char *md_direction_name(md_direction d);
const char *md_dir_name(md_dir d);
const char *md_suspect_kind_name(md_suspect_kind k);

#endif
