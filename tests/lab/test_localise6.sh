#!/usr/bin/env bash
# test_localise6.sh: the joint two-way localisation over IPv6, end to end through
# `mtrctl diagnose local6 cvm6 -6`, on the asymmetric lab where the two single-ended reports
# point at different links (test_localise.sh is the same check over IPv4):
#   a -> b: a 2001:db8:1::1 -> r1 2001:db8:1::2 -> r2f 2001:db8:2::2 -> r3 2001:db8:3::2
#           -> b 2001:db8:4::2
#   b -> a: b 2001:db8:4::2 -> r3 2001:db8:4::1 -> r2r 2001:db8:6::1 -> r1 2001:db8:5::1
#           -> a 2001:db8:1::1
# (the IPv6 routers answer from the inbound interface's address, so the hops mirror the v4
# ones; local6/cvm6 are the two agents with their IPv6 addresses as probe_address, so the
# traces, the one-way stream and the follow-up pings are all ICMPv6/IPv6; the controller
# still talks to the agents over IPv4 from its own node).
# Each scenario asserts diagnosis.suspect's kind, path, from_ip and to_ip:
#   loss on a forward-only link (r2f -> r3) and on a reverse-only link (r2r -> r1): both
#     traceroutes show loss toward their destinations either way;
#   loss on the link both paths use, a -> r1 (named from_ttl 0, a's own address): only the
#     one-way stream tells it from r1 -> a;
#   a destination firewall at b (it drops ICMPv6 echo requests);
#   the forward-only loss again without the one-way stream: the follow-up probes decide;
#   ICMPv6 rate limiting on r2f: no suspect.
# Every scenario runs REPEAT times (default 2) with 100 probes per hop, so a pass is not luck.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lab_require root ip jq nft ping iptables ip6tables
lab_sweep_stale
[[ -x $MD_BIN/controller/mtrctl && -x $MD_BIN/agent/mtr-agent ]] || lab_skip "no mtrctl / mtr-agent in $MD_BIN"
REPEAT=${REPEAT:-2}
DIAG=(diagnose local6 cvm6 -c 100 -i 0.02 -6) # lab_scenario runs this

lab_init
lab_build_diamond asym
LAB_CTL_V6_NAMES=1 lab_agents_up 4
lab_controller_oob # faults on a's access link must not cut the controller off

# Why: the clean runs must be IPv6 end to end: r1 (on both paths; the controller's own IPv4
# sessions go over ctl's links, not through r1) counts what it receives per family.
count_families() {
  lab_nft_chains r1
  lab_exec r1 nft add rule inet mdl_fault pre meta nfproto ipv4 counter
  lab_exec r1 nft add rule inet mdl_fault pre meta nfproto ipv6 counter
}
check_families() {
  local n
  mapfile -t n < <(lab_exec r1 nft list chain inet mdl_fault pre | grep -o 'packets [0-9]*' | cut -d' ' -f2)
  ((${#n[@]} == 2 && n[0] == 0 && n[1] > 0)) || lab_fail "clean: r1 received IPv4 ${n[0]:-?}, IPv6 ${n[1]:-?} packets"
  lab_fault_clear r1
}

# The run really is IPv6: both paths as built, over the agents' IPv6 addresses, no IPv4 at r1.
FWD6=$(printf '%s\n' "${LAB_FWD6[@]}" | jq -R . | jq -sc .)
REV6=$(printf '%s\n' "${LAB_REV6[@]}" | jq -R . | jq -sc .)
lab_scenario clean count_families check_families \
  ".diagnosis.suspect == null and .agents.a.probe_address == \"$LAB_A6\" and
   .agents.b.probe_address == \"$LAB_B6\" and
   ([.forward.hops[] | .hosts[0].ip] == $FWD6) and ([.reverse.hops[] | .hosts[0].ip] == $REV6)"

lab_scenario fwd_only_loss "lab_loss r2f 3 out 30" "lab_fault_clear r2f" \
  "$(lab_suspect loss forward 2001:db8:2::2 2001:db8:3::2) and .one_way.forward.loss_pct > 10"
lab_scenario rev_only_loss "lab_loss r2r 5 out 30" "lab_fault_clear r2r" \
  "$(lab_suspect loss reverse 2001:db8:6::1 2001:db8:5::1) and .one_way.reverse.loss_pct > 10"
lab_scenario shared_link_a_to_r1 "lab_loss r1 1 in 30" "lab_fault_clear r1" \
  "$(lab_suspect loss forward 2001:db8:1::1 2001:db8:1::2) and .diagnosis.suspect.from_ttl == 0"
lab_scenario firewall_at_b "lab_drop_echo b 30" "lab_fault_clear b" \
  "$(lab_suspect destination_host forward 2001:db8:3::2 2001:db8:4::2)"
lab_scenario followups_decide "lab_loss r2f 3 out 30" "lab_fault_clear r2f" \
  "$(lab_suspect loss forward 2001:db8:2::2 2001:db8:3::2) and .one_way == null and (.followup | length) > 0" \
  --no-oneway
lab_scenario rate_limit_is_no_fault "lab_icmp_ratelimit r2f 1000" "lab_fault_clear r2f" \
  '.diagnosis.suspect == null and .diagnosis.status == "healthy"'
lab_log "PASS"
