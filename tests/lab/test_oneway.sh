#!/usr/bin/env bash
# test_oneway.sh: one-way streams between two real agents (docs/protocol.md, "One-way
# streams") on the asymmetric lab (a -> b crosses r2f, b -> a crosses r2r), driven by
# tests/oneway_tool.c (md-oneway) through the controller's client: 200 packets every 10 ms
# each way at once, then the JSON figures of each direction are checked.
#
# The controller runs out of band: a namespace "ctl" with its own links to a (link 20)
# and b (link 21), so the clock offsets measured over the control connections are not
# distorted by the faults injected on the data path. Two runs from inside a (in band,
# where mtrctl runs in the other lab tests) show what an in-band controller gets.
#
#   clean                   both ways 200/200, delay 0 +- 1 ms (in and out of band)
#   30% loss r1 e1 in       (a -> r1: the A -> B direction only) forward 15..45%, reverse 0
#                           (out of band; in band too, with the control traffic to b lossy)
#   30% loss r1 e1 out      (r1 -> a: the B -> A direction only) reverse 15..45%, forward 0
#   +40 ms r2f e3 out       (forward only) forward delay ~40 ms, reverse ~0 (out of band);
#                           in band the sum forward + reverse is still ~40 ms, and the raw
#                           delays (one clock in the lab) are 40 and 0 either way
#   agents                  exit 0 on SIGTERM with clean logs (no sanitizer reports)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lab_require root ip jq nft ping iptables ip6tables
lab_sweep_stale
[[ -x $MD_BIN/controller/mtrctl && -x $MD_BIN/agent/mtr-agent ]] || lab_skip "no mtrctl / mtr-agent in $MD_BIN"
ONEWAY=$MD_BIN/tests/md-oneway
[[ -x $ONEWAY ]] || lab_skip "$ONEWAY is not built (cmake target md-oneway)"
lab_require_delay

STREAM=(-c 200 -i 0.01)

# Why: one run of md-oneway from NODE between the two agents; J is its JSON.
# Usage: oneway NAME NODE
oneway() {
  local name=$1 node=$2 rc=0
  J=$LAB_TMP/$name.json
  lab_exec "$node" timeout 120 "$ONEWAY" --config "$LAB_CTL_CONFIG" local cvm "${STREAM[@]}" \
    >"$J" 2>"$LAB_TMP/$name.err" || rc=$?
  ((rc == 0)) && jq -e .forward "$J" >/dev/null 2>&1 ||
    lab_fail "$name: md-oneway exit $rc: $(cat "$LAB_TMP/$name.err")"
  lab_log "$name: $(jq -c '{f: [.forward.recv, .forward.loss_pct, .forward.delay_avg_ms],
    r: [.reverse.recv, .reverse.loss_pct, .reverse.delay_avg_ms], off: .offset_ms}' "$J")"
}

# Why: assert a jq expression over the last run, showing the run when it fails.
check() {
  local what=$1 expr=$2
  jq -e "$expr" "$J" >/dev/null || {
    jq -c . "$J" >&2
    lab_fail "$what: expected $expr"
  }
}

# Why: the figures every run must have whatever the fault: all sent, the results computed.
check_sane() {
  check "$1" '.forward.sent == 200 and .reverse.sent == 200 and .forward.computed and .reverse.computed'
  check "$1" '.forward.ignored == 0 and .reverse.ignored == 0 and .forward.duplicates == 0'
}

lab_init
lab_build_diamond asym
# The out-of-band controller: ctl -20- a, ctl -21- b, host routes to the agents only.
lab_add_node ctl host
lab_link 20 ctl a
lab_link 21 ctl b
lab_exec ctl ip route add "$LAB_A4/32" via "$(lab_addr 20 2)" dev e20
lab_exec ctl ip route add "$LAB_B4/32" via "$(lab_addr 21 2)" dev e21
lab_wait_reachable ctl "$LAB_A4" "$LAB_B4"
lab_agents_up 4

# ---- clean
oneway clean ctl
check_sane clean
check clean '.forward.recv == 200 and .reverse.recv == 200 and .forward.loss_pct == 0 and .reverse.loss_pct == 0'
check clean '(.forward.delay_avg_ms | fabs) < 1 and (.reverse.delay_avg_ms | fabs) < 1'
check clean '(.offset_ms.a | fabs) < 1 and (.offset_ms.b | fabs) < 1'
lab_log "ok: clean (out of band): 200/200 both ways, delay ~0"

oneway clean_inband "$LAB_A"
check_sane clean_inband
check clean_inband '.forward.loss_pct == 0 and .reverse.loss_pct == 0'
check clean_inband '(.forward.delay_avg_ms | fabs) < 1 and (.reverse.delay_avg_ms | fabs) < 1'
lab_log "ok: clean (in band): 200/200 both ways, delay ~0"

# ---- loss on the shared access link, A -> B only (a -> r1 arriving on r1 e1)
lab_loss r1 1 in 30
oneway fwdloss ctl
check_sane fwdloss
check fwdloss '.forward.loss_pct >= 15 and .forward.loss_pct <= 45'
check fwdloss '.reverse.loss_pct == 0'
lab_log "ok: 30% loss a->r1: forward $(jq .forward.loss_pct "$J")%, reverse 0%"
oneway fwdloss_inband "$LAB_A"
check_sane fwdloss_inband
check fwdloss_inband '.forward.loss_pct >= 15 and .forward.loss_pct <= 45 and .reverse.loss_pct == 0'
lab_log "ok: 30% loss a->r1, controller in a (its traffic to b lossy too): forward $(jq .forward.loss_pct "$J")%"
lab_fault_clear r1

# ---- the same link, B -> A only (r1 -> a leaving r1 e1)
lab_loss r1 1 out 30
oneway revloss ctl
check_sane revloss
check revloss '.reverse.loss_pct >= 15 and .reverse.loss_pct <= 45'
check revloss '.forward.loss_pct == 0'
lab_log "ok: 30% loss r1->a: reverse $(jq .reverse.loss_pct "$J")%, forward 0%"
lab_fault_clear r1

# ---- latency on a link only the forward path uses
lab_delay r2f 3 out 40
oneway delay ctl
check_sane delay
check delay '.forward.loss_pct == 0 and .reverse.loss_pct == 0'
check delay '.forward.delay_avg_ms >= 38 and .forward.delay_avg_ms <= 50'
check delay '(.reverse.delay_avg_ms | fabs) < 2'
check delay '.forward.raw_delay_min_ms >= 39'
lab_log "ok: +40 ms r2f->r3: forward $(jq .forward.delay_avg_ms "$J") ms, reverse $(jq .reverse.delay_avg_ms "$J") ms"
oneway delay_inband "$LAB_A"
check_sane delay_inband
# In band the controller's TimeSync to b crosses the delay one way: b's offset comes out
# ~20 ms high and the delay is split between the directions; their sum is right.
check delay_inband '(.forward.delay_avg_ms + .reverse.delay_avg_ms) >= 38 and (.forward.delay_avg_ms + .reverse.delay_avg_ms) <= 50'
check delay_inband '.forward.raw_delay_avg_ms >= 38 and .forward.raw_delay_avg_ms <= 50 and (.reverse.raw_delay_avg_ms | fabs) < 2'
lab_log "ok: +40 ms, controller in a: forward $(jq .forward.delay_avg_ms "$J") + reverse $(jq .reverse.delay_avg_ms "$J") ms (b's offset $(jq .offset_ms.b "$J") ms)"
lab_delay_clear r2f 3 out

# ---- the agents stop cleanly
for pid in "$LAB_AGENT_PID_A" "$LAB_AGENT_PID_B"; do
  rc=0
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  ((rc == 0)) || lab_fail "an agent exited with status $rc on SIGTERM"
done
for f in "$LAB_TMP"/agent-*.err; do
  if grep -qE 'Sanitizer|runtime error' "$f"; then
    sed 's/^/    /' "$f" >&2
    lab_fail "$f has sanitizer reports"
  fi
done
grep -q 'stream ow-fwd .*receive 200 packets' "$LAB_TMP/agent-cvm.err" ||
  lab_fail "cvm's log has no stream line: $(tail -n 5 "$LAB_TMP/agent-cvm.err")"
lab_log "ok: agents stopped cleanly; their logs name each stream"
lab_log "PASS"
