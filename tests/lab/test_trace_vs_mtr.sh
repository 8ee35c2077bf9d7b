#!/usr/bin/env bash
# test_trace_vs_mtr.sh: on the linear lab, `mtr-agent trace` and mtr, run at the same moment,
# see the same responder at every TTL, for ICMP, UDP, TCP to an open port and TCP to a
# closed port (RST), over IPv4 and IPv6. mtr is also checked against the lab's known path,
# so a disagreement is pinned on the right side. Without an agent that can trace, only the
# mtr side runs and the test reports "skipped" (77).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lab_require root ip mtr jq nft ping
lab_sweep_stale

CYCLES=5
INTERVAL=0.2
GRACE=1
OPEN_PORT=7   # socat listens here on dst (when socat is installed)
CLOSED_PORT=9 # nothing listens: the destination answers SYN with RST

HAVE_AGENT=0
lab_agent_has_trace && HAVE_AGENT=1

# Why: one protocol/family case: both tools in the background, then both compared with
# the expected path and with each other; the agent's statistics must be mtr-like too.
run_case() {
  local name=$1 fam=$2
  shift 2
  local target expected ttl loss sent m=$LAB_TMP/$name.mtr.json a=$LAB_TMP/$name.agent.json pm pa=''
  if [[ $fam == 4 ]]; then target=$LAB_DST4 expected=("${LAB_PATH4[@]}"); else target=$LAB_DST6 expected=("${LAB_PATH6[@]}"); fi
  lab_mtr_json "$LAB_SRC" "$m" "$target" -n "-$fam" -c "$CYCLES" -i "$INTERVAL" -G "$GRACE" "$@" &
  pm=$!
  if ((HAVE_AGENT)); then
    lab_agent_trace "$LAB_SRC" "$a" "$target" -n "-$fam" -c "$CYCLES" -i "$INTERVAL" \
      --gracetime "$GRACE" --json "$@" &
    pa=$!
  fi
  lab_wait "$pm" "mtr ($name)" "$m.err"
  lab_assert_same_hops "mtr $name" "$(lab_mtr_hops "$m")" "$(lab_path_lines "${expected[@]}")"
  [[ -n $pa ]] || {
    lab_log "ok: mtr $name: ${expected[*]}"
    return 0
  }
  lab_wait "$pa" "mtr-agent trace ($name)" "$a.err"
  jq -e '.hops | type == "array"' "$a" >/dev/null || lab_fail "agent $name: no JSON PATH object on stdout"
  lab_assert_same_hops "agent vs mtr, $name" "$(lab_agent_hops "$a")" "$(lab_mtr_hops "$m")"
  for ((ttl = 1; ttl <= ${#expected[@]}; ttl++)); do
    loss=$(lab_agent_loss "$a" "$ttl")
    sent=$(jq -r --argjson t "$ttl" '.hops[] | select(.ttl == $t) | .sent' "$a")
    lab_fcmp "${loss:-100}" '==' 0 || lab_fail "agent $name: TTL $ttl loss $loss% on a clean lab"
    [[ $sent == "$CYCLES" ]] || lab_fail "agent $name: TTL $ttl sent '$sent' probes, -c $CYCLES"
  done
  lab_log "ok: agent = mtr for $name: ${expected[*]}"
}

lab_init
lab_build_linear

TCP_CASES=(tcp_closed)
if command -v socat >/dev/null; then
  lab_bg "$LAB_DST" "$LAB_TMP/socat.out" "$LAB_TMP/socat.err" \
    socat -u "TCP6-LISTEN:$OPEN_PORT,ipv6only=0,reuseaddr,fork" /dev/null
  TCP_CASES+=(tcp_open)
  sleep 0.3
else
  lab_log "socat not installed: TCP is tested against a closed port only (apt-get install socat)"
fi

for fam in 4 6; do
  run_case "icmp_v$fam" "$fam"
  run_case "udp_v$fam" "$fam" -u
  for c in "${TCP_CASES[@]}"; do
    if [[ $c == tcp_open ]]; then port=$OPEN_PORT; else port=$CLOSED_PORT; fi
    run_case "${c}_v$fam" "$fam" -T -P "$port"
  done
done

((HAVE_AGENT)) || lab_skip "mtr side and lab verified; $(lab_agent_bin) has no working 'trace' yet"
echo "test_trace_vs_mtr: passed"
