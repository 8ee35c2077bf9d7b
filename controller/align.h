/* align: which hops of the forward path (A -> B) and the reverse path
 * (B -> A) are the same router, or the two ends of one link, so the two
 * traces can be read together (CONTRACT.md "alignment").
 *
 * Rules (docs/verdict.md, "Alignment"), strongest first:
 *   same_ip    a responder of forward hop k has the address of a responder
 *              of reverse hop j: one router, seen by both traces.
 *   link_mate  a responder of forward hop k and one of reverse hop j are the
 *              two ends of one point-to-point link (md_align_link_mates):
 *              the link is crossed both ways; hop k and hop j are its two
 *              routers (each trace sees the router at the far end).
 *   gateway    a forward hop is a link mate of A (the reverse trace's
 *              target): it is A's neighbour on a point-to-point link, so it
 *              is the router that delivers the reverse trace to A, i.e. the
 *              reverse hop just before A. The same for B's neighbour on the
 *              reverse path and the forward hop just before B.
 * The two agents (each path's destination hop, and any hop answering with
 * A's or B's address) are never paired: they are the ends, not routers.
 *
 * Pure functions, no I/O.
 */
#ifndef MD_ALIGN_H
#define MD_ALIGN_H

#include <stdbool.h>

#include "md_addr.h"
#include "md_path.h"
#include "md_report.h"

/* a and b are the two ends of one point-to-point link: same family,
 * different addresses, and either in the same /31 (IPv4) or /127 (IPv6), or
 * in the same /30 or /126 as its two usable addresses (last two bits 01 and
 * 10). */
bool md_align_link_mates(const md_addr *a, const md_addr *b);

/* Fill al (empty or cleared) from both paths. 0; -EINVAL for NULL; -ENOMEM
 * (al left cleared). */
int md_align(const md_path *fwd, const md_path *rev, md_alignment *al);

/* Frees what md_align allocated and zeroes al. NULL is fine. */
void md_alignment_clear(md_alignment *al);

/* The pair (forward_ttl, reverse_ttl) if the alignment has it, else NULL. */
const md_align_pair *md_alignment_find(const md_alignment *al, int forward_ttl, int reverse_ttl);

#endif
