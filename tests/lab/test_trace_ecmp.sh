#!/usr/bin/env bash
# test_trace_ecmp.sh: on the ECMP lab (r1 spreads flows over r2a and r2b by their 5-tuple),
# `mtr-agent trace --classic -u` (mtr's varying ports) must list both responders at the
# ECMP TTL, and the default constant-flow (Paris) probes must list exactly one responder at
# every TTL, for UDP, TCP and ICMP, IPv4 and IPv6. mtr -u (classic) first confirms that the
# lab spreads. With 20 classic probes the chance that all take one path is 2^-19.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lab_require root ip mtr jq nft ping
lab_sweep_stale

CYCLES=20
INTERVAL=0.05
GRACE=1

HAVE_AGENT=0
lab_agent_has_trace && HAVE_AGENT=1

# Why: "TTL IP" lines of the two ECMP responders of one family.
ecmp_lines() {
  local fam=$1 ip
  if [[ $fam == 4 ]]; then set -- "${LAB_ECMP4[@]}"; else set -- "${LAB_ECMP6[@]}"; fi
  for ip; do echo "$LAB_ECMP_TTL $ip"; done
}

# Why: the lab itself must spread mtr's classic UDP probes, or the agent check means nothing.
check_mtr_spreads() {
  local fam=$1 target=$2 r=$LAB_TMP/mtr.v$1.txt
  lab_mtr_report "$LAB_SRC" "$r" "$target" -n -u "-$fam" -c "$CYCLES" -i "$INTERVAL" -G "$GRACE"
  lab_assert_same_hops "mtr -u v$fam at TTL $LAB_ECMP_TTL" \
    "$(lab_mtr_report_hosts "$r" | awk -v t="$LAB_ECMP_TTL" '$1 == t')" "$(ecmp_lines "$fam")"
  lab_log "ok: mtr -u v$fam sees both ECMP routers"
}

# Why: classic UDP probes from the agent must find both routers at the ECMP TTL.
check_agent_classic() {
  local fam=$1 target=$2 a=$LAB_TMP/classic.v$1.json
  lab_agent_trace "$LAB_SRC" "$a" "$target" --classic -u -n "-$fam" -c "$CYCLES" -i "$INTERVAL" \
    --gracetime "$GRACE" --json || lab_fail "mtr-agent trace --classic -u v$fam failed: $(cat "$a.err")"
  lab_assert_same_hops "agent --classic -u v$fam at TTL $LAB_ECMP_TTL" \
    "$(lab_agent_hops "$a" | awk -v t="$LAB_ECMP_TTL" '$1 == t')" "$(ecmp_lines "$fam")"
  [[ $(lab_agent_nhosts "$a" "$LAB_ECMP_TTL") == 2 ]] || lab_fail "agent --classic v$fam: hop $LAB_ECMP_TTL does not have 2 hosts"
  lab_log "ok: agent --classic -u v$fam lists both ECMP routers"
}

# Why: Paris probes keep the flow fields fixed, so every TTL has one responder, one of the
# two at the ECMP TTL, and the trace still reaches the destination.
check_agent_paris() {
  local fam=$1 target=$2 name=$3 a ttl n hop
  shift 3
  a=$LAB_TMP/paris.$name.v$fam.json
  lab_agent_trace "$LAB_SRC" "$a" "$target" -n "-$fam" -c "$CYCLES" -i "$INTERVAL" \
    --gracetime "$GRACE" --json "$@" || lab_fail "mtr-agent trace ($name, Paris) v$fam failed: $(cat "$a.err")"
  for ttl in 1 2 3 4; do
    n=$(lab_agent_nhosts "$a" "$ttl")
    [[ $n == 1 ]] || lab_fail "agent Paris $name v$fam: TTL $ttl has $n responders: $(lab_agent_hops "$a" | tr '\n' ' ')"
  done
  hop=$(lab_agent_hops "$a" | awk -v t="$LAB_ECMP_TTL" '$1 == t')
  grep -qxF "$hop" <<<"$(ecmp_lines "$fam")" || lab_fail "agent Paris $name v$fam: TTL $LAB_ECMP_TTL answered by $hop"
  [[ $(lab_agent_hops "$a" | awk '$1 == 4 { print $2 }') == "$target" ]] || lab_fail "agent Paris $name v$fam: did not reach $target"
  lab_log "ok: agent Paris $name v$fam stays on one path (${hop#* })"
}

lab_init
lab_build_diamond ecmp
for fam in 4 6; do
  if [[ $fam == 4 ]]; then target=$LAB_DST4; else target=$LAB_DST6; fi
  check_mtr_spreads "$fam" "$target"
  ((HAVE_AGENT)) || continue
  check_agent_classic "$fam" "$target"
  check_agent_paris "$fam" "$target" udp -u
  check_agent_paris "$fam" "$target" tcp -T -P 9
  check_agent_paris "$fam" "$target" icmp
done

((HAVE_AGENT)) || lab_skip "mtr side and lab verified; $(lab_agent_bin) has no working 'trace' yet"
echo "test_trace_ecmp: passed"
