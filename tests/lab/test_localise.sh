#!/usr/bin/env bash
# test_localise.sh: the joint two-way localisation, end to end through `mtrctl diagnose`, on
# the asymmetric lab where the two single-ended reports point at different links:
#   a -> b: a 198.18.1.1 -> r1 198.18.1.2 -> r2f 198.18.2.2 -> r3 198.18.3.2 -> b 198.18.4.2
#   b -> a: b 198.18.4.2 -> r3 198.18.4.1 -> r2r 198.18.6.1 -> r1 198.18.5.1 -> a 198.18.1.1
# Each scenario asserts diagnosis.suspect's kind, path, from_ip and to_ip:
#   loss on a forward-only link (r2f -> r3) and on a reverse-only link (r2r -> r1): both
#     traceroutes show loss toward their destinations either way;
#   loss on each direction of the link both paths use (a -> r1, r1 -> a): the two traceroute
#     pictures are identical, only the one-way stream tells them apart;
#   a latency rise (+40 ms) on the forward-only and on the reverse-only link;
#   a destination firewall at either end;
#   the forward-only loss again without the one-way stream: the follow-up probes decide;
#   ICMP rate limiting on r2f: no suspect.
# Every scenario runs REPEAT times (default 2) with 100 probes per hop, so a pass is not luck.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lab_require root ip jq nft ping iptables ip6tables
lab_sweep_stale
[[ -x $MD_BIN/controller/mtrctl && -x $MD_BIN/agent/mtr-agent ]] || lab_skip "no mtrctl / mtr-agent in $MD_BIN"
REPEAT=${REPEAT:-2}
DIAG=(diagnose local cvm -c 100 -i 0.02) # lab_scenario runs this

lab_init
lab_build_diamond asym
lab_agents_up 4
lab_controller_oob # faults on a's access link must not cut the controller off

lab_scenario fwd_only_loss "lab_loss r2f 3 out 30" "lab_fault_clear r2f" \
  "$(lab_suspect loss forward 198.18.2.2 198.18.3.2) and .one_way.forward.loss_pct > 10"
lab_scenario rev_only_loss "lab_loss r2r 5 out 30" "lab_fault_clear r2r" \
  "$(lab_suspect loss reverse 198.18.6.1 198.18.5.1) and .one_way.reverse.loss_pct > 10"
lab_scenario shared_link_a_to_r1 "lab_loss r1 1 in 30" "lab_fault_clear r1" \
  "$(lab_suspect loss forward 198.18.1.1 198.18.1.2) and .diagnosis.suspect.from_ttl == 0"
lab_scenario shared_link_r1_to_a "lab_loss r1 1 out 30" "lab_fault_clear r1" \
  "$(lab_suspect loss reverse 198.18.5.1 198.18.1.1)"
lab_scenario fwd_only_latency "lab_delay r2f 3 out 40" "lab_delay_clear r2f 3 out" \
  "$(lab_suspect latency forward 198.18.2.2 198.18.3.2) and .one_way.forward.delay_avg_ms > 30"
lab_scenario rev_only_latency "lab_delay r2r 5 out 40" "lab_delay_clear r2r 5 out" \
  "$(lab_suspect latency reverse 198.18.6.1 198.18.5.1) and .one_way.reverse.delay_avg_ms > 30"
lab_scenario firewall_at_b "lab_drop_echo b 30" "lab_fault_clear b" \
  "$(lab_suspect destination_host forward 198.18.3.2 198.18.4.2)"
lab_scenario firewall_at_a "lab_drop_echo a 30" "lab_fault_clear a" \
  "$(lab_suspect destination_host reverse 198.18.5.1 198.18.1.1)"
lab_scenario followups_decide "lab_loss r2f 3 out 30" "lab_fault_clear r2f" \
  "$(lab_suspect loss forward 198.18.2.2 198.18.3.2) and .one_way == null and (.followup | length) > 0" \
  --no-oneway
lab_scenario rate_limit_is_no_fault "lab_icmp_ratelimit r2f 1000" "lab_fault_clear r2f" \
  '.diagnosis.suspect == null and .diagnosis.status == "healthy"'
lab_log "PASS"
