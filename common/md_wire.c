/* md_wire: envelopes, error codes, request checks and the md_path mapping
 * (see md_wire.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md_addr.h"
#include "md_frame.h"
#include "md_wire.h"

/* Unpacking may allocate at most BASE + FACTOR * frame length bytes in
 * total (temporary allocations included). Real messages need under 16x
 * their size (a full 255-hop path with 16 responders and MPLS stacks per
 * hop: ~13x); a frame of empty repeated submessages needs ~100x, so without
 * a bound 1 MiB on the wire could cost 100 MiB. */
#define MD__WIRE_BUDGET_BASE (1024u * 1024u)
#define MD__WIRE_BUDGET_FACTOR 32u

/* Every Envelope member: oneof case suffix, field name, message type. */
#define MD__WIRE_MSGS(X)                                                                           \
  X(HELLO, hello, Hello)                                                                           \
  X(HELLO_ACK, hello_ack, HelloAck)                                                                \
  X(RUN_REQUEST, run_request, RunRequest)                                                          \
  X(RUN_ACCEPTED, run_accepted, RunAccepted)                                                       \
  X(HOP_UPDATE, hop_update, HopUpdate)                                                             \
  X(RUN_RESULT, run_result, RunResult)                                                             \
  X(CANCEL, cancel, Cancel)                                                                        \
  X(ERROR, error, Error)                                                                           \
  X(TIME_SYNC_REQUEST, time_sync_request, TimeSyncRequest)                                         \
  X(TIME_SYNC_REPLY, time_sync_reply, TimeSyncReply)                                               \
  X(STREAM_REQUEST, stream_request, StreamRequest)                                                 \
  X(STREAM_RESULT, stream_result, StreamResult)                                                    \
  X(STREAM_ACCEPTED, stream_accepted, StreamAccepted)

static const struct md__wire_kind {
  const ProtobufCMessageDescriptor *desc;
  Mtrdiag__V1__Envelope__MsgCase msg_case;
  const char *name;
} md__wire_kinds[] = {
#define X(C, m, T) {&mtrdiag__v1__##m##__descriptor, MTRDIAG__V1__ENVELOPE__MSG_##C, #T},
    MD__WIRE_MSGS(X)
#undef X
};

#define MD__NKINDS (sizeof md__wire_kinds / sizeof md__wire_kinds[0])

/* Write a reason into a caller's optional buffer. */
__attribute__((format(printf, 3, 4))) static void md__errf(char *err, size_t errlen,
                                                           const char *fmt, ...) {
  va_list ap;
  if (!err || errlen == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* ---- envelopes ---- */

/* The one way a message goes out: versioned envelope, framed, size-checked. */
int md_wire_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *out_len) {
  Mtrdiag__V1__Envelope env = MTRDIAG__V1__ENVELOPE__INIT;
  uint8_t hdr[MD_FRAME_HDR_LEN];

  if (!msg || !out || !out_len)
    return -EINVAL;
  env.version = MD_WIRE_VERSION;
  /* The envelope only reads the message: dropping const here is safe. */
  for (size_t i = 0; i < MD__NKINDS && env.msg_case == MTRDIAG__V1__ENVELOPE__MSG__NOT_SET; i++) {
    if (msg->descriptor != md__wire_kinds[i].desc)
      continue;
    env.msg_case = md__wire_kinds[i].msg_case;
    switch (env.msg_case) {
#define X(C, m, T)                                                                                 \
  case MTRDIAG__V1__ENVELOPE__MSG_##C:                                                             \
    env.m = (Mtrdiag__V1__##T *)msg;                                                               \
    break;
      MD__WIRE_MSGS(X)
#undef X
    default:
      break;
    }
  }
  if (env.msg_case == MTRDIAG__V1__ENVELOPE__MSG__NOT_SET)
    return -EINVAL;

  size_t n = mtrdiag__v1__envelope__get_packed_size(&env);
  int r = md_frame_put_header(hdr, n);
  if (r < 0)
    return r;
  uint8_t *b = malloc(MD_FRAME_HDR_LEN + n);
  if (!b)
    return -ENOMEM;
  memcpy(b, hdr, MD_FRAME_HDR_LEN);
  mtrdiag__v1__envelope__pack(&env, b + MD_FRAME_HDR_LEN);
  *out = b;
  *out_len = MD_FRAME_HDR_LEN + n;
  return 0;
}

/* Generic access to the carried message, for code that handles any type. */
const ProtobufCMessage *md_wire_msg(const Mtrdiag__V1__Envelope *env) {
  if (!env)
    return NULL;
  switch (env->msg_case) {
#define X(C, m, T)                                                                                 \
  case MTRDIAG__V1__ENVELOPE__MSG_##C:                                                             \
    return env->m ? &env->m->base : NULL;
    MD__WIRE_MSGS(X)
#undef X
  default:
    return NULL;
  }
}

/* Message type names for logs and UNEXPECTED_MESSAGE errors. */
const char *md_wire_msg_name(Mtrdiag__V1__Envelope__MsgCase c) {
  for (size_t i = 0; i < MD__NKINDS; i++)
    if (md__wire_kinds[i].msg_case == c)
      return md__wire_kinds[i].name;
  return c == MTRDIAG__V1__ENVELOPE__MSG__NOT_SET ? "(none)" : "(unknown)";
}

/* protobuf-c allocator that refuses to go over a byte budget, so a small
 * frame cannot make unpack allocate without bound. Frees go to free(): the
 * result is an ordinary malloc()ed message tree. */
typedef struct md__budget {
  size_t left;
  bool over;
} md__budget;

/* Allocate from the budget; once it is spent, fail (and say so). */
static void *md__budget_alloc(void *ud, size_t n) {
  md__budget *b = ud;
  if (n > b->left) {
    b->over = true;
    return NULL;
  }
  b->left -= n;
  return malloc(n ? n : 1);
}

/* Frees need no accounting: the budget bounds the total ever allocated. */
static void md__budget_free(void *ud, void *p) {
  (void)ud;
  free(p);
}

/* protobuf-c keeps an unknown field numbered 0 when its tag comes as an
 * overlong varint (0x80 0x00), though field 0 does not exist; re-packed it
 * becomes bytes nothing unpacks. Such a message is malformed: find it. */
static bool md__bad_unknown(const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < m->n_unknown_fields; i++)
    if (m->unknown_fields[i].tag == 0)
      return true;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const char *base = (const char *)m;
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
      continue;
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)(const void *)(base + f->quantifier_offset) != f->id)
      continue; /* not the oneof member that is set */
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(const void *)(base + f->quantifier_offset);
      ProtobufCMessage *const *a =
          *(ProtobufCMessage *const *const *)(const void *)(base + f->offset);
      for (size_t k = 0; k < n; k++)
        if (a[k] && md__bad_unknown(a[k]))
          return true;
    } else {
      const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(const void *)(base + f->offset);
      if (sub && md__bad_unknown(sub))
        return true;
    }
  }
  return false;
}

/* The one way a message comes in: every check the receiver relies on,
 * with a specific reason for the Error it sends back. */
int md_wire_unpack(const uint8_t *payload, size_t len, Mtrdiag__V1__Envelope **out, char *err,
                   size_t errlen) {
  static const uint8_t empty[1];
  md__budget b = {MD__WIRE_BUDGET_BASE + MD__WIRE_BUDGET_FACTOR * len, false};
  ProtobufCAllocator a = {md__budget_alloc, md__budget_free, &b};

  if (!out || (!payload && len)) {
    md__errf(err, errlen, "%s", md_wire_strerror(-EINVAL));
    return -EINVAL;
  }
  *out = NULL;
  if (len > MD_FRAME_MAX) {
    md__errf(err, errlen, "%s", md_wire_strerror(-EMSGSIZE));
    return -EMSGSIZE;
  }
  Mtrdiag__V1__Envelope *env = mtrdiag__v1__envelope__unpack(&a, len, payload ? payload : empty);
  if (!env) {
    int r = b.over ? MD_WIRE_EBUDGET : MD_WIRE_EUNPACK;
    md__errf(err, errlen, "%s (%zu bytes)", md_wire_strerror(r), len);
    return r;
  }
  if (md__bad_unknown(&env->base)) {
    md__errf(err, errlen, "%s (field number 0)", md_wire_strerror(MD_WIRE_EUNPACK));
    md_wire_free(env);
    return MD_WIRE_EUNPACK;
  }
  if (env->version != MD_WIRE_VERSION) {
    if (env->version == 0)
      md__errf(err, errlen, "envelope has no protocol version");
    else
      md__errf(err, errlen, "protocol version %u, this build speaks %u", env->version,
               MD_WIRE_VERSION);
    md_wire_free(env);
    return MD_WIRE_EVERSION;
  }
  if (!md_wire_msg(env)) {
    if (env->base.n_unknown_fields > 0)
      md__errf(err, errlen, "message type (field %u) unknown to this build of protocol %u.%u",
               env->base.unknown_fields[0].tag, MD_WIRE_VERSION, MD_WIRE_REVISION);
    else
      md__errf(err, errlen, "envelope carries no message");
    md_wire_free(env);
    return MD_WIRE_ENOMSG;
  }
  *out = env;
  return 0;
}

/* One free for unpacked and built messages alike: both are malloc()ed trees. */
void md_wire_free(void *msg) {
  if (msg)
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* ---- errors ---- */

/* Text for every code a frame or envelope operation can return. */
const char *md_wire_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
  case MD_WIRE_EUNPACK:
    return "bytes do not unpack as an Envelope";
  case MD_WIRE_EBUDGET:
    return "message would need too much memory to unpack";
  case MD_WIRE_EVERSION:
    return "unsupported protocol version";
  case MD_WIRE_ENOMSG:
    return "no message, or a message type this build does not know";
  case MD_WIRE_EFIELD:
    return "a field is missing or out of range";
  case -EMSGSIZE:
    return "frame length over the limit (1 MiB)";
  case -EBADMSG:
    return "zero-length frame";
  default:
    return err < 0 ? strerror(-err) : "unknown error";
  }
}

/* Local error -> what the peer is told (Error.code). */
Mtrdiag__V1__ErrorCode md_wire_error_code(int err) {
  switch (err) {
  case -EMSGSIZE:
  case -EBADMSG:
    return MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME;
  case MD_WIRE_EUNPACK:
  case MD_WIRE_EBUDGET:
    return MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE;
  case MD_WIRE_EVERSION:
    return MTRDIAG__V1__ERROR_CODE__ERROR_CODE_VERSION_MISMATCH;
  case MD_WIRE_ENOMSG:
    return MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE;
  case MD_WIRE_EFIELD:
    return MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST;
  default:
    return MTRDIAG__V1__ERROR_CODE__ERROR_CODE_INTERNAL;
  }
}

/* ErrorCode -> the report's errors[].code string. */
const char *md_wire_error_name(Mtrdiag__V1__ErrorCode code) {
  static const char *const names[] = {
      [MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNSPECIFIED] = "UNSPECIFIED",
      [MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME] = "BAD_FRAME",
      [MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE] = "BAD_MESSAGE",
      [MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE] = "UNEXPECTED_MESSAGE",
      [MTRDIAG__V1__ERROR_CODE__ERROR_CODE_VERSION_MISMATCH] = "VERSION_MISMATCH",
      [MTRDIAG__V1__ERROR_CODE__ERROR_CODE_NOT_AUTHORISED] = "NOT_AUTHORISED",
      [MTRDIAG__V1__ERROR_CODE__ERROR_CODE_POLICY_DENIED] = "POLICY_DENIED",
      [MTRDIAG__V1__ERROR_CODE__ERROR_CODE_LIMIT_EXCEEDED] = "LIMIT_EXCEEDED",
      [MTRDIAG__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST] = "BAD_REQUEST",
      [MTRDIAG__V1__ERROR_CODE__ERROR_CODE_RUN_FAILED] = "RUN_FAILED",
      [MTRDIAG__V1__ERROR_CODE__ERROR_CODE_INTERNAL] = "INTERNAL",
      [MTRDIAG__V1__ERROR_CODE__ERROR_CODE_UNKNOWN_RUN] = "UNKNOWN_RUN",
  };
  if ((int)code >= 0 && (size_t)code < sizeof names / sizeof names[0] && names[code])
    return names[code];
  return "UNKNOWN"; /* a code from a newer peer */
}

/* md_trace's on_done status -> RunResult.status, the same on every agent. */
Mtrdiag__V1__RunStatus md_wire_run_status(int status) {
  if (status == 0)
    return MTRDIAG__V1__RUN_STATUS__RUN_STATUS_OK;
  if (status == -ECANCELED)
    return MTRDIAG__V1__RUN_STATUS__RUN_STATUS_CANCELLED;
  return MTRDIAG__V1__RUN_STATUS__RUN_STATUS_FAILED;
}

/* ---- validation ---- */

/* Received text is printed to terminals, JSON and HTML: only UTF-8
 * without control characters passes. */
bool md_wire_text_ok(const char *s, size_t max) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = 0;
  if (!s)
    return true;
  while (p[n]) {
    unsigned c = p[n], len, cp;
    if (c < 0x20 || c == 0x7f)
      return false; /* control characters: no place in a name or a report */
    if (c < 0x80) {
      n++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf)
      len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
      len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
      len = 4, cp = c & 0x07;
    else
      return false;
    for (unsigned i = 1; i < len; i++) {
      if ((p[n + i] & 0xc0) != 0x80)
        return false; /* also stops at the terminating NUL */
      cp = cp << 6 | (p[n + i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
      return false; /* overlong, out of range, surrogate, C1 control */
    n += len;
  }
  return n <= max;
}

/* run_ids appear in logs and file names: a small, safe alphabet. */
int md_wire_check_run_id(const char *id, char *err, size_t errlen) {
  size_t n = id ? strlen(id) : 0;
  if (n == 0) {
    md__errf(err, errlen, "run_id: missing");
    return MD_WIRE_EFIELD;
  }
  if (n > MD_WIRE_RUN_ID_MAX) {
    md__errf(err, errlen, "run_id: longer than %d bytes", MD_WIRE_RUN_ID_MAX);
    return MD_WIRE_EFIELD;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)id[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) {
      md__errf(err, errlen, "run_id: character 0x%02x not allowed", c);
      return MD_WIRE_EFIELD;
    }
  }
  return 0;
}

/* A value that must not exceed max; 0 always passes (it means "default"). */
static int md__check_max(const char *field, uint32_t v, uint32_t max, char *err, size_t errlen) {
  if (v > max) {
    md__errf(err, errlen, "%s: %u is over %u", field, v, max);
    return MD_WIRE_EFIELD;
  }
  return 0;
}

/* Parse a numeric address field that must name a unicast host. */
static int md__check_host_addr(const char *field, const char *s, md_addr *a, char *err,
                               size_t errlen) {
  if (md_addr_parse(s, a) < 0) {
    md__errf(err, errlen, "%s: \"%.64s\" is not a numeric IPv4 or IPv6 address", field, s);
    return MD_WIRE_EFIELD;
  }
  if (md_addr_is_unspecified(a) || md_addr_is_multicast(a)) {
    md__errf(err, errlen, "%s: %.64s is not a unicast address", field, s);
    return MD_WIRE_EFIELD;
  }
  return 0;
}

/* Reject nonsense before policy looks at a request, naming the field. */
int md_wire_check_run_request(const Mtrdiag__V1__RunRequest *r, char *err, size_t errlen) {
  md_addr target, source;
  int rc;

  if (!r) {
    md__errf(err, errlen, "no RunRequest");
    return MD_WIRE_EFIELD;
  }
  if ((rc = md_wire_check_run_id(r->run_id, err, errlen)) < 0)
    return rc;
  if (!r->target || !r->target[0]) {
    md__errf(err, errlen, "target: missing");
    return MD_WIRE_EFIELD;
  }
  if ((rc = md__check_host_addr("target", r->target, &target, err, errlen)) < 0)
    return rc;
  if (!md_wire_text_ok(r->target_name, MD_WIRE_NAME_MAX)) {
    md__errf(err, errlen, "target_name: not UTF-8 text of at most %d bytes", MD_WIRE_NAME_MAX);
    return MD_WIRE_EFIELD;
  }
  switch (r->protocol) {
  case MTRDIAG__V1__PROTOCOL__PROTOCOL_ICMP:
  case MTRDIAG__V1__PROTOCOL__PROTOCOL_UDP:
  case MTRDIAG__V1__PROTOCOL__PROTOCOL_TCP:
    break;
  default:
    md__errf(err, errlen, "protocol: unknown value %d", (int)r->protocol);
    return MD_WIRE_EFIELD;
  }
  int fam = md_addr_family(&target);
  switch (r->family) {
  case MTRDIAG__V1__FAMILY__FAMILY_ANY:
    break;
  case MTRDIAG__V1__FAMILY__FAMILY_IPV4:
  case MTRDIAG__V1__FAMILY__FAMILY_IPV6:
    if ((r->family == MTRDIAG__V1__FAMILY__FAMILY_IPV4) != (fam == AF_INET)) {
      md__errf(err, errlen, "family: %s asked, target %.64s is not",
               r->family == MTRDIAG__V1__FAMILY__FAMILY_IPV4 ? "IPv4" : "IPv6", r->target);
      return MD_WIRE_EFIELD;
    }
    break;
  default:
    md__errf(err, errlen, "family: unknown value %d", (int)r->family);
    return MD_WIRE_EFIELD;
  }
  if (r->source && r->source[0]) {
    if ((rc = md__check_host_addr("source", r->source, &source, err, errlen)) < 0)
      return rc;
    if (md_addr_family(&source) != fam) {
      md__errf(err, errlen, "source: %.64s is not of the target's address family", r->source);
      return MD_WIRE_EFIELD;
    }
  }
  if ((rc = md__check_max("cycles", r->cycles, MD_WIRE_MAX_CYCLES, err, errlen)) < 0 ||
      (rc = md__check_max("interval_ms", r->interval_ms, MD_WIRE_MAX_INTERVAL_MS, err, errlen)) <
          0 ||
      (rc = md__check_max("psize", r->psize, MD_WIRE_MAX_PSIZE, err, errlen)) < 0 ||
      (rc = md__check_max("first_ttl", r->first_ttl, MD_MAX_TTL, err, errlen)) < 0 ||
      (rc = md__check_max("max_ttl", r->max_ttl, MD_MAX_TTL, err, errlen)) < 0 ||
      (rc = md__check_max("max_unknown", r->max_unknown, MD_MAX_TTL, err, errlen)) < 0 ||
      (rc = md__check_max("tos", r->tos, 255, err, errlen)) < 0 ||
      (rc = md__check_max("port", r->port, 65535, err, errlen)) < 0 ||
      (rc = md__check_max("local_port", r->local_port, 65535, err, errlen)) < 0 ||
      (rc = md__check_max("gracetime_ms", r->gracetime_ms, MD_WIRE_MAX_GRACE_MS, err, errlen)) < 0)
    return rc;
  uint32_t first = r->first_ttl ? r->first_ttl : 1, max = r->max_ttl ? r->max_ttl : 30;
  if (first > max) {
    md__errf(err, errlen, "first_ttl: %u is beyond max_ttl %u", first, max);
    return MD_WIRE_EFIELD;
  }
  if (r->start_at_real_ns < 0) {
    md__errf(err, errlen, "start_at_real_ns: negative");
    return MD_WIRE_EFIELD;
  }
  return 0;
}

/* ---- md_path -> messages ---- */

/* A string field for a built message: "" shares protobuf-c's empty string
 * (which free_unpacked leaves alone), anything else is a copy. */
static int md__pb_str(const char *s, char **dst) {
  if (!s || !s[0]) {
    *dst = (char *)protobuf_c_empty_string;
    return 0;
  }
  *dst = strdup(s);
  return *dst ? 0 : -ENOMEM;
}

/* One responder as a Host message. */
static int md__host_to_pb(const md_host *h, Mtrdiag__V1__Host **out) {
  char ip[MD_ADDRSTRLEN];
  Mtrdiag__V1__Host *pb = malloc(sizeof *pb);
  if (!pb)
    return -ENOMEM;
  mtrdiag__v1__host__init(pb);
  *out = pb; /* from here the caller's md_wire_free releases partial work */
  pb->count = h->count;
  if (md__pb_str(md_addr_str(&h->addr, ip, sizeof ip), &pb->ip) < 0 ||
      md__pb_str(h->hostname, &pb->hostname) < 0)
    return -ENOMEM;
  size_t n = h->n_mpls > 0 ? (size_t)h->n_mpls : 0;
  if (n > MD_MAX_MPLS)
    n = MD_MAX_MPLS;
  if (n == 0)
    return 0;
  pb->mpls = calloc(n, sizeof *pb->mpls);
  if (!pb->mpls)
    return -ENOMEM;
  pb->n_mpls = n;
  for (size_t i = 0; i < n; i++) {
    Mtrdiag__V1__Mpls *m = malloc(sizeof *m);
    if (!m)
      return -ENOMEM;
    mtrdiag__v1__mpls__init(m);
    m->label = h->mpls[i].label;
    m->tc = h->mpls[i].tc;
    m->s = h->mpls[i].s;
    m->ttl = h->mpls[i].ttl;
    pb->mpls[i] = m;
  }
  return 0;
}

/* One hop for the wire (HopUpdate and Path share it). */
int md_wire_hop_to_pb(const md_hop *h, Mtrdiag__V1__Hop **out) {
  if (!h || !out)
    return -EINVAL;
  Mtrdiag__V1__Hop *pb = malloc(sizeof *pb);
  if (!pb)
    return -ENOMEM;
  mtrdiag__v1__hop__init(pb);
  pb->ttl = h->ttl > 0 ? (uint32_t)h->ttl : 0;
  pb->sent = h->st.sent;
  pb->recv = h->st.recv;
  pb->transit = h->st.transit;
  pb->last_us = h->st.last_us;
  pb->best_us = h->st.best_us;
  pb->worst_us = h->st.worst_us;
  pb->avg_us = h->st.avg_us;
  pb->ssd_us = h->st.ssd_us;
  pb->gmean_us = h->st.gmean_us;
  pb->jitter_us = h->st.jitter_us;
  pb->javg_us = h->st.javg_us;
  pb->jmax_us = h->st.jmax_us;
  pb->jinta_us = h->st.jinta_us;
  size_t n = h->n_hosts > 0 ? (size_t)h->n_hosts : 0;
  if (n > 0) {
    pb->hosts = calloc(n, sizeof *pb->hosts);
    if (!pb->hosts)
      goto oom;
    pb->n_hosts = n; /* NULL entries are fine for md_wire_free */
    for (size_t i = 0; i < n; i++)
      if (md__host_to_pb(&h->hosts[i], &pb->hosts[i]) < 0)
        goto oom;
  }
  *out = pb;
  return 0;
oom:
  md_wire_free(pb);
  return -ENOMEM;
}

/* Every hop of a path as a Hop array (for Path and HopUpdate). */
static int md__hops_to_pb(const md_path *p, Mtrdiag__V1__Hop ***hops, size_t *n_hops) {
  size_t n = p->n_hops > 0 ? (size_t)p->n_hops : 0;
  *hops = NULL;
  *n_hops = 0;
  if (n == 0)
    return 0;
  Mtrdiag__V1__Hop **a = calloc(n, sizeof *a);
  if (!a)
    return -ENOMEM;
  /* publish first: the owning message frees what was built so far */
  *hops = a;
  *n_hops = n;
  for (size_t i = 0; i < n; i++)
    if (md_wire_hop_to_pb(&p->hops[i], &a[i]) < 0)
      return -ENOMEM;
  return 0;
}

/* A whole path for the wire (RunResult). */
int md_wire_path_to_pb(const md_path *p, Mtrdiag__V1__Path **out) {
  if (!p || !out)
    return -EINVAL;
  Mtrdiag__V1__Path *pb = malloc(sizeof *pb);
  if (!pb)
    return -ENOMEM;
  mtrdiag__v1__path__init(pb);
  pb->started_at_real_ns = p->started_at_ns;
  pb->finished_at_real_ns = p->finished_at_ns;
  pb->complete = p->complete;
  pb->reached = p->reached;
  pb->first_ttl = p->first_ttl > 0 ? (uint32_t)p->first_ttl : 1;
  if (md__pb_str(p->source, &pb->source) < 0 || md__pb_str(p->target, &pb->target) < 0 ||
      md__pb_str(p->target_name, &pb->target_name) < 0 ||
      md__hops_to_pb(p, &pb->hops, &pb->n_hops) < 0) {
    md_wire_free(pb);
    return -ENOMEM;
  }
  *out = pb;
  return 0;
}

/* The agent's per-cycle snapshot message. */
int md_wire_hop_update_new(const char *run_id, uint32_t cycles_done, const md_path *p,
                           Mtrdiag__V1__HopUpdate **out) {
  if (!run_id || !out)
    return -EINVAL;
  Mtrdiag__V1__HopUpdate *u = malloc(sizeof *u);
  if (!u)
    return -ENOMEM;
  mtrdiag__v1__hop_update__init(u);
  u->cycles_done = cycles_done;
  if (md__pb_str(run_id, &u->run_id) < 0 || (p && md__hops_to_pb(p, &u->hops, &u->n_hops) < 0)) {
    md_wire_free(u);
    return -ENOMEM;
  }
  *out = u;
  return 0;
}

/* The agent's last message about a run. */
int md_wire_run_result_new(const char *run_id, Mtrdiag__V1__RunStatus status, const char *message,
                           uint32_t cycles_done, const md_path *p, Mtrdiag__V1__RunResult **out) {
  if (!run_id || !out)
    return -EINVAL;
  Mtrdiag__V1__RunResult *rr = malloc(sizeof *rr);
  if (!rr)
    return -ENOMEM;
  mtrdiag__v1__run_result__init(rr);
  rr->status = status;
  rr->cycles_done = cycles_done;
  if (md__pb_str(run_id, &rr->run_id) < 0 || md__pb_str(message, &rr->message) < 0 ||
      (p && md_wire_path_to_pb(p, &rr->path) < 0)) {
    md_wire_free(rr);
    return -ENOMEM;
  }
  *out = rr;
  return 0;
}

/* ---- messages -> md_path ---- */

/* A statistic as the agent could have produced it: a number, not negative. */
static int md__check_stat(const char *name, uint32_t ttl, double v, char *err, size_t errlen) {
  if (!isfinite(v) || v < 0) {
    md__errf(err, errlen, "hop %u: %s is %g", ttl, name, v);
    return MD_WIRE_EFIELD;
  }
  return 0;
}

/* Check a received Hop completely before anything is stored; the parsed
 * responder addresses go to addrs[]. */
static int md__check_hop(const Mtrdiag__V1__Hop *pb, md_addr addrs[MD_MAX_HOSTS], char *err,
                         size_t errlen) {
  uint32_t ttl = pb->ttl;
  int rc;

  if (ttl < 1 || ttl > MD_MAX_TTL) {
    md__errf(err, errlen, "hop: TTL %u out of range 1..%d", ttl, MD_MAX_TTL);
    return MD_WIRE_EFIELD;
  }
  if ((uint64_t)pb->recv + pb->transit > pb->sent) {
    md__errf(err, errlen, "hop %u: %u received + %u in transit > %u sent", ttl, pb->recv,
             pb->transit, pb->sent);
    return MD_WIRE_EFIELD;
  }
  if ((rc = md__check_stat("last_us", ttl, pb->last_us, err, errlen)) < 0 ||
      (rc = md__check_stat("best_us", ttl, pb->best_us, err, errlen)) < 0 ||
      (rc = md__check_stat("worst_us", ttl, pb->worst_us, err, errlen)) < 0 ||
      (rc = md__check_stat("avg_us", ttl, pb->avg_us, err, errlen)) < 0 ||
      (rc = md__check_stat("ssd_us", ttl, pb->ssd_us, err, errlen)) < 0 ||
      (rc = md__check_stat("gmean_us", ttl, pb->gmean_us, err, errlen)) < 0 ||
      (rc = md__check_stat("jitter_us", ttl, pb->jitter_us, err, errlen)) < 0 ||
      (rc = md__check_stat("javg_us", ttl, pb->javg_us, err, errlen)) < 0 ||
      (rc = md__check_stat("jmax_us", ttl, pb->jmax_us, err, errlen)) < 0 ||
      (rc = md__check_stat("jinta_us", ttl, pb->jinta_us, err, errlen)) < 0)
    return rc;
  if (pb->n_hosts > MD_MAX_HOSTS) {
    md__errf(err, errlen, "hop %u: %zu responders, at most %d", ttl, pb->n_hosts, MD_MAX_HOSTS);
    return MD_WIRE_EFIELD;
  }
  for (size_t i = 0; i < pb->n_hosts; i++) {
    const Mtrdiag__V1__Host *h = pb->hosts[i];
    if (!h || !h->ip || md_addr_parse(h->ip, &addrs[i]) < 0) {
      md__errf(err, errlen, "hop %u: responder \"%.64s\" is not a numeric address", ttl,
               h && h->ip ? h->ip : "");
      return MD_WIRE_EFIELD;
    }
    for (size_t j = 0; j < i; j++) {
      if (md_addr_equal(&addrs[i], &addrs[j])) {
        md__errf(err, errlen, "hop %u: responder %.64s listed twice", ttl, h->ip);
        return MD_WIRE_EFIELD;
      }
    }
    if (!md_wire_text_ok(h->hostname, MD_WIRE_NAME_MAX)) {
      md__errf(err, errlen, "hop %u: host name of %.64s not UTF-8 text of at most %d bytes", ttl,
               h->ip, MD_WIRE_NAME_MAX);
      return MD_WIRE_EFIELD;
    }
    if (h->n_mpls > MD_MAX_MPLS) {
      md__errf(err, errlen, "hop %u: %zu MPLS labels for %.64s, at most %d", ttl, h->n_mpls, h->ip,
               MD_MAX_MPLS);
      return MD_WIRE_EFIELD;
    }
    for (size_t k = 0; k < h->n_mpls; k++) {
      const Mtrdiag__V1__Mpls *m = h->mpls[k];
      if (!m || m->label > 0xFFFFF || m->tc > 7 || m->s > 1 || m->ttl > 255) {
        md__errf(err, errlen, "hop %u: MPLS entry %zu of %.64s out of range", ttl, k, h->ip);
        return MD_WIRE_EFIELD;
      }
    }
  }
  return 0;
}

/* One received hop into a path, after checking all of it. */
int md_wire_hop_from_pb(const Mtrdiag__V1__Hop *pb, md_path *p, char *err, size_t errlen) {
  md_addr addrs[MD_MAX_HOSTS];
  int rc;

  if (!pb || !p)
    return -EINVAL;
  if ((rc = md__check_hop(pb, addrs, err, errlen)) < 0)
    return rc;
  md_hop *h = md_path_hop(p, (int)pb->ttl);
  if (!h)
    return -ENOMEM;
  if (h->n_hosts > 0 || h->st.sent > 0) {
    md__errf(err, errlen, "hop %u: given twice", pb->ttl);
    return MD_WIRE_EFIELD;
  }
  h->st.sent = pb->sent;
  h->st.recv = pb->recv;
  h->st.transit = pb->transit;
  h->st.last_us = pb->last_us;
  h->st.best_us = pb->best_us;
  h->st.worst_us = pb->worst_us;
  h->st.avg_us = pb->avg_us;
  h->st.ssd_us = pb->ssd_us;
  h->st.gmean_us = pb->gmean_us;
  h->st.jitter_us = pb->jitter_us;
  h->st.javg_us = pb->javg_us;
  h->st.jmax_us = pb->jmax_us;
  h->st.jinta_us = pb->jinta_us;
  for (size_t i = 0; i < pb->n_hosts; i++) {
    const Mtrdiag__V1__Host *hp = pb->hosts[i];
    md_mpls mpls[MD_MAX_MPLS];
    for (size_t k = 0; k < hp->n_mpls; k++) {
      mpls[k].label = hp->mpls[k]->label;
      mpls[k].tc = (uint8_t)hp->mpls[k]->tc;
      mpls[k].s = (uint8_t)hp->mpls[k]->s;
      mpls[k].ttl = (uint8_t)hp->mpls[k]->ttl;
    }
    md_host *host = md_hop_add_host(h, &addrs[i], mpls, (int)hp->n_mpls);
    if (!host)
      return -ENOMEM;
    host->count = hp->count;
    if (hp->hostname && hp->hostname[0] && md_host_set_hostname(host, hp->hostname) < 0)
      return -ENOMEM;
  }
  return 0;
}

/* Fill a fresh path with received hops: ascending TTL, none below the
 * path's first TTL. */
static int md__hops_from_pb(md_path *p, Mtrdiag__V1__Hop *const *hops, size_t n, char *err,
                            size_t errlen) {
  uint32_t prev = 0;
  for (size_t i = 0; i < n; i++) {
    const Mtrdiag__V1__Hop *h = hops[i];
    if (!h) {
      md__errf(err, errlen, "hop %zu: missing", i);
      return MD_WIRE_EFIELD;
    }
    if (h->ttl < (uint32_t)p->first_ttl || h->ttl <= prev) {
      md__errf(err, errlen, "hop %zu: TTL %u out of order (first TTL %d, previous %u)", i, h->ttl,
               p->first_ttl, prev);
      return MD_WIRE_EFIELD;
    }
    int rc = md_wire_hop_from_pb(h, p, err, errlen);
    if (rc < 0)
      return rc;
    prev = h->ttl;
  }
  return 0;
}

/* Names a path carries are printed in reports: bound them. */
static int md__check_name(const char *field, const char *s, char *err, size_t errlen) {
  if (!md_wire_text_ok(s, MD_WIRE_NAME_MAX)) {
    md__errf(err, errlen, "%s: not UTF-8 text of at most %d bytes", field, MD_WIRE_NAME_MAX);
    return MD_WIRE_EFIELD;
  }
  return 0;
}

/* New path with the given header, then its hops; frees it on error. */
static int md__path_build(const char *source, const char *target, const char *target_name,
                          uint32_t first_ttl, Mtrdiag__V1__Hop *const *hops, size_t n_hops,
                          md_path **out, char *err, size_t errlen) {
  int rc;
  *out = NULL;
  if (first_ttl < 1 || first_ttl > MD_MAX_TTL) {
    md__errf(err, errlen, "first_ttl: %u out of range 1..%d", first_ttl, MD_MAX_TTL);
    return MD_WIRE_EFIELD;
  }
  if ((rc = md__check_name("source", source, err, errlen)) < 0 ||
      (rc = md__check_name("target", target, err, errlen)) < 0 ||
      (rc = md__check_name("target_name", target_name, err, errlen)) < 0)
    return rc;
  md_path *p = md_path_new(source ? source : "", target ? target : "",
                           target_name ? target_name : "", (int)first_ttl);
  if (!p)
    return -ENOMEM;
  if ((rc = md__hops_from_pb(p, hops, n_hops, err, errlen)) < 0) {
    if (rc == -ENOMEM)
      md__errf(err, errlen, "%s", md_wire_strerror(rc));
    md_path_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

/* The controller's copy of a finished run's path. */
int md_wire_path_from_pb(const Mtrdiag__V1__Path *pb, md_path **out, char *err, size_t errlen) {
  if (!out)
    return -EINVAL;
  *out = NULL;
  if (!pb) {
    md__errf(err, errlen, "path: missing");
    return MD_WIRE_EFIELD;
  }
  md_path *p;
  int rc = md__path_build(pb->source, pb->target, pb->target_name,
                          pb->first_ttl ? pb->first_ttl : 1, pb->hops, pb->n_hops, &p, err, errlen);
  if (rc < 0)
    return rc;
  p->started_at_ns = pb->started_at_real_ns;
  p->finished_at_ns = pb->finished_at_real_ns;
  p->complete = pb->complete;
  p->reached = pb->reached;
  *out = p;
  return 0;
}

/* The controller's live view of a run from its latest snapshot. */
int md_wire_hop_update_to_path(const Mtrdiag__V1__HopUpdate *u, const char *source,
                               const char *target, const char *target_name, md_path **out,
                               char *err, size_t errlen) {
  if (!u || !out)
    return -EINVAL;
  uint32_t first = u->n_hops > 0 && u->hops[0] ? u->hops[0]->ttl : 1;
  return md__path_build(source, target, target_name, first, u->hops, u->n_hops, out, err, errlen);
}
