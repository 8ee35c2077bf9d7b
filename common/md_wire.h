/* md_wire: the messages of the control channel (proto/mtrdiag.proto) on top
 * of md_frame: pack a message into a frame, unpack and validate a frame's
 * payload, name the errors, sanity-check a RunRequest, and the one mapping
 * between md_path and the Path/Hop messages that agent and controller share.
 *
 * Sending:
 *   Mtrdiag__V1__Cancel c = MTRDIAG__V1__CANCEL__INIT;
 *   c.run_id = "r1";
 *   uint8_t *buf; size_t len;
 *   if (md_wire_pack(&c.base, &buf, &len) == 0) { write(buf, len); free(buf); }
 * Receiving (payload from md_frame_decoder_feed):
 *   Mtrdiag__V1__Envelope *env;
 *   int r = md_wire_unpack(payload, plen, &env, err, sizeof err);
 *   if (r < 0) send Error md_wire_error_code(r) with err, maybe close;
 *   switch (env->msg_case) { case MTRDIAG__V1__ENVELOPE__MSG_HELLO: ... }
 *   md_wire_free(env);
 *
 * Errors are negative: errno values (-ENOMEM, -EINVAL, and md_frame's
 * -EMSGSIZE / -EBADMSG) or the MD_WIRE_E* codes below; md_wire_strerror()
 * names any of them and md_wire_error_code() maps them to the ErrorCode to
 * send to the peer. Functions taking `char *err, size_t errlen` write a
 * specific reason there (err may be NULL). */
#ifndef MD_WIRE_H
#define MD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md_path.h"
#include "mtrdiag.pb-c.h"

#define MD_WIRE_VERSION 1  /* Envelope.version; bumped only by incompatible changes */
#define MD_WIRE_REVISION 1 /* compatible additions known (docs/protocol.md): 1 one-way streams */

#define MD_WIRE_RUN_ID_MAX 64 /* bytes, charset [A-Za-z0-9._:-] */
#define MD_WIRE_NAME_MAX 255  /* target_name, host names, agent names */

/* Sanity ceilings of md_wire_check_run_request (the agent's policy is
 * usually much stricter). */
#define MD_WIRE_MAX_CYCLES 1000000u
#define MD_WIRE_MAX_INTERVAL_MS 3600000u
#define MD_WIRE_MAX_GRACE_MS 3600000u
#define MD_WIRE_MAX_PSIZE 65535u

enum {
  MD_WIRE_EUNPACK = -4001,  /* bytes do not unpack as an Envelope */
  MD_WIRE_EBUDGET = -4002,  /* unpacking would need more memory than a frame that size may */
  MD_WIRE_EVERSION = -4003, /* Envelope.version is not MD_WIRE_VERSION */
  MD_WIRE_ENOMSG = -4004,   /* no message, or a message type this build does not know */
  MD_WIRE_EFIELD = -4005,   /* a field is missing or out of range */
};

/* ---- envelopes ---- */

/* Wrap `msg` (any message type of Envelope's oneof, e.g. &hello.base) in an
 * Envelope of MD_WIRE_VERSION and frame it: *out is a malloc()ed buffer of
 * header + payload, ready to write; free() it. 0, -EINVAL (not an Envelope
 * member type), -EMSGSIZE (over MD_FRAME_MAX) or -ENOMEM. */
int md_wire_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *out_len);

/* Unpack one frame's payload into a new Envelope and check it: the bytes
 * unpack, the version is MD_WIRE_VERSION, a known message is set. Memory
 * used while unpacking is bounded by a multiple of len. On success free
 * *out with md_wire_free(); on error *out is NULL and the code is
 * MD_WIRE_EUNPACK, MD_WIRE_EBUDGET, MD_WIRE_EVERSION, MD_WIRE_ENOMSG,
 * -EMSGSIZE (len over MD_FRAME_MAX) or -EINVAL. */
int md_wire_unpack(const uint8_t *payload, size_t len, Mtrdiag__V1__Envelope **out, char *err,
                   size_t errlen);

/* The message an Envelope carries (NULL when none). */
const ProtobufCMessage *md_wire_msg(const Mtrdiag__V1__Envelope *env);

/* Free a message from md_wire_unpack() or an md_wire_*_new/_to_pb builder
 * (pointer to the message struct, any type). NULL is allowed. */
void md_wire_free(void *msg);

/* "Hello", "RunRequest", ...: for logs and "unexpected X" errors. */
const char *md_wire_msg_name(Mtrdiag__V1__Envelope__MsgCase c);

/* ---- errors ---- */

/* Human text for any error code of md_wire and md_frame (or an errno). */
const char *md_wire_strerror(int err);
/* The ErrorCode to send the peer for a local error code. */
Mtrdiag__V1__ErrorCode md_wire_error_code(int err);
/* "BAD_FRAME", "POLICY_DENIED", ...: the report's errors[].code. */
const char *md_wire_error_name(Mtrdiag__V1__ErrorCode code);
/* RunStatus for an md_trace on_done status: 0 OK, -ECANCELED CANCELLED,
 * anything else FAILED. */
Mtrdiag__V1__RunStatus md_wire_run_status(int status);

/* ---- validation ---- */

/* Is s (NULL counts as "") valid UTF-8 of at most max bytes, free of
 * control characters? protobuf-c does not check that proto3 strings are
 * UTF-8; use this on any received text that reaches a report, a log or
 * JSON (names, Error.message, RunResult.message). */
bool md_wire_text_ok(const char *s, size_t max);

/* A run_id is 1..MD_WIRE_RUN_ID_MAX bytes of [A-Za-z0-9._:-]. 0 or MD_WIRE_EFIELD. */
int md_wire_check_run_id(const char *id, char *err, size_t errlen);

/* Basic sanity of a RunRequest before policy: run_id, target_name text, a numeric target
 * address that is neither unspecified nor multicast, a source of the same
 * family, family agreeing with the target, enums known, numbers within
 * their field's range (TTLs 0..255, first_ttl <= max_ttl after defaults,
 * ports 0..65535, tos 0..255, and the MD_WIRE_MAX_* ceilings),
 * start_at_real_ns >= 0. Zero means "mtr's default" for every numeric
 * option (see the proto). 0 or MD_WIRE_EFIELD naming the field in err. */
int md_wire_check_run_request(const Mtrdiag__V1__RunRequest *r, char *err, size_t errlen);

/* ---- md_path <-> Path / Hop ---- */

/* One hop as a new Hop message (free with md_wire_free). 0 or -ENOMEM. */
int md_wire_hop_to_pb(const md_hop *h, Mtrdiag__V1__Hop **out);
/* Fill the hop for pb->ttl of `p` (created by md_path_hop(); it must have no
 * responders yet) from a received Hop, after checking it: TTL 1..255, at
 * most MD_MAX_HOSTS distinct numeric responders with md_wire_text_ok host
 * names, at most MD_MAX_MPLS labels each with label/tc/s/ttl in range, recv + transit <= sent,
 * statistics finite and >= 0. 0, MD_WIRE_EFIELD or -ENOMEM; on error the hop may be partly filled
 * (discard the path). */
int md_wire_hop_from_pb(const Mtrdiag__V1__Hop *pb, md_path *p, char *err, size_t errlen);

/* A whole path as a new Path message (free with md_wire_free). 0 or -ENOMEM. */
int md_wire_path_to_pb(const md_path *p, Mtrdiag__V1__Path **out);
/* A new md_path from a received Path (free with md_path_free). Names must
 * be md_wire_text_ok; hops come in ascending TTL order, none below
 * first_ttl (0 means 1), each as md_wire_hop_from_pb. 0, MD_WIRE_EFIELD or
 * -ENOMEM; *out is NULL on error. */
int md_wire_path_from_pb(const Mtrdiag__V1__Path *pb, md_path **out, char *err, size_t errlen);

/* Agent side: a HopUpdate (snapshot of every hop of p) and the final
 * RunResult carrying p (p may be NULL: no path). Free with md_wire_free.
 * 0, -EINVAL (run_id NULL) or -ENOMEM. */
int md_wire_hop_update_new(const char *run_id, uint32_t cycles_done, const md_path *p,
                           Mtrdiag__V1__HopUpdate **out);
int md_wire_run_result_new(const char *run_id, Mtrdiag__V1__RunStatus status, const char *message,
                           uint32_t cycles_done, const md_path *p, Mtrdiag__V1__RunResult **out);

/* Controller side: the live path of a HopUpdate, as a new md_path with the
 * given names (the controller knows them from its RunRequest); first_ttl
 * is the first hop's TTL (1 when there are none). As md_wire_path_from_pb. */
int md_wire_hop_update_to_path(const Mtrdiag__V1__HopUpdate *u, const char *source,
                               const char *target, const char *target_name, md_path **out,
                               char *err, size_t errlen);

#endif
