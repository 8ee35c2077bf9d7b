#!/usr/bin/env bash
# test_trace_loss.sh: 30% random loss on one link in the forward direction (r2 -> r3, on the
# middle router's way out) of the linear lab. `mtr-agent trace` and mtr run at the same time
# with 100 cycles: hops before the link show ~0% loss, hops beyond it show loss, and the
# agent's loss at the destination agrees with mtr's within sampling error. IPv4 and IPv6.
#
# Sampling error: 100 probes at p = 0.3 have a standard error of 4.6 points; the difference
# of two independent runs has sqrt(2) x 4.6 = 6.5, so 3.5 sigma allows 23 points; each value
# must also lie within 12..48% (3.9 sigma around 30%).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lab_require root ip mtr jq nft ping
lab_sweep_stale

PCT=30
CYCLES=100
INTERVAL=0.05
GRACE=1
MAX_DIFF=23
LO=12
HI=48
CLEAN_MAX=3 # % allowed before the lossy link (0 expected)

HAVE_AGENT=0
lab_agent_has_trace && HAVE_AGENT=1

# Why: one tool's per-TTL loss must show the fault where it is and nowhere before it.
# Usage: check_shape WHAT LOSS_TTL1 LOSS_TTL2 LOSS_TTL3 LOSS_TTL4
check_shape() {
  local what=$1 ttl
  shift
  for ttl in 1 2; do
    lab_fcmp "${!ttl:-100}" '<=' "$CLEAN_MAX" || lab_fail "$what: TTL $ttl (before the lossy link) lost ${!ttl:-all}%"
  done
  for ttl in 3 4; do
    lab_in_range "${!ttl:-0}" "$LO" "$HI" ||
      lab_fail "$what: TTL $ttl (beyond the lossy link) lost ${!ttl:-?}%, expected $LO..$HI%"
  done
}

# Why: one family: both tools at once, then the loss pattern of each and their agreement.
run_family() {
  local fam=$1 target m=$LAB_TMP/v$1.mtr.json a=$LAB_TMP/v$1.agent.json pm pa='' ttl mtr_l=() ag_l=()
  if [[ $fam == 4 ]]; then target=$LAB_DST4; else target=$LAB_DST6; fi
  lab_mtr_json "$LAB_SRC" "$m" "$target" -n "-$fam" -c "$CYCLES" -i "$INTERVAL" -G "$GRACE" &
  pm=$!
  if ((HAVE_AGENT)); then
    lab_agent_trace "$LAB_SRC" "$a" "$target" -n "-$fam" -c "$CYCLES" -i "$INTERVAL" \
      --gracetime "$GRACE" --json &
    pa=$!
  fi
  lab_wait "$pm" "mtr (v$fam)" "$m.err"
  for ttl in 1 2 3 4; do mtr_l+=("$(lab_mtr_loss "$m" "$ttl")"); done
  lab_log "mtr v$fam loss per TTL: ${mtr_l[*]}"
  check_shape "mtr v$fam" "${mtr_l[@]}"
  [[ -n $pa ]] || return 0
  lab_wait "$pa" "mtr-agent trace (v$fam)" "$a.err"
  for ttl in 1 2 3 4; do ag_l+=("$(lab_agent_loss "$a" "$ttl")"); done
  lab_log "agent v$fam loss per TTL: ${ag_l[*]}"
  check_shape "agent v$fam" "${ag_l[@]}"
  local diff
  diff=$(awk -v a="${ag_l[3]}" -v b="${mtr_l[3]}" 'BEGIN { d = a - b; print (d < 0 ? -d : d) }')
  lab_fcmp "$diff" '<=' "$MAX_DIFF" ||
    lab_fail "v$fam destination loss: agent ${ag_l[3]}% vs mtr ${mtr_l[3]}% (difference $diff > $MAX_DIFF)"
  [[ $(jq -r '.hops[] | select(.ttl == 4) | .sent' "$a") == "$CYCLES" ]] ||
    lab_fail "agent v$fam: destination hop did not count $CYCLES probes sent"
  lab_log "ok: v$fam destination loss agent ${ag_l[3]}% / mtr ${mtr_l[3]}%"
}

lab_init
lab_build_linear
lab_loss r2 3 out "$PCT"
run_family 4
run_family 6

((HAVE_AGENT)) || lab_skip "mtr side and lab verified; $(lab_agent_bin) has no working 'trace' yet"
echo "test_trace_loss: passed"
