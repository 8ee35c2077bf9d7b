#!/usr/bin/env bash
# test_diagnose.sh: `mtrctl diagnose local cvm` end to end, driven only through the command
# line, on the asymmetric lab (a -> b crosses r2f, b -> a crosses r2r) with two real agents
# and certificates from `mtrctl pki`. Each scenario asserts on the JSON report and the exit
# status:
#   clean                      healthy, exit 0, both paths, asymmetric alignment, skew < 50 ms
#   ICMP rate limiting on r2f  healthy, exit 0, r2f named in rate_limited
#   loss on r2f -> r3          (a link only the forward path uses) degraded, exit 1,
#                              forward loss begins at r3 (198.18.3.2)
#   destination firewall       b drops 30% of echo requests: destination_host, exit 1
#   loss in the first hop      a -> r1 drops 30%: forward loss begins at TTL 1 (local ISP);
#                              the reference target is traced from local too (follow-up)
#   latency rise               +40 ms on r2f -> r3: forward latency rise at TTL 3, exit 1
#   B a plain address          forward only: reverse null, the report says why, exit 0
#   bundle, history, show      -o writes the evidence files; history lists; show re-renders
#   agent killed mid-run       partial report, exit 3, the error names cvm, stored incomplete
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lab_require root ip jq nft ping iptables ip6tables
lab_sweep_stale
[[ -x $MD_BIN/controller/mtrctl && -x $MD_BIN/agent/mtr-agent ]] || lab_skip "no mtrctl / mtr-agent in $MD_BIN"

FAST=(-c 100 -i 0.02) # 100 probes per hop: 30% loss is then 30 +- 4.6 lost, never mistaken

# Why: one diagnosis as JSON; sets RC and J (the report file).
# Usage: diag NAME ARGS...
diag() {
  local name=$1
  shift
  lab_mtrctl "$LAB_TMP/$name" diagnose "$@" --format json
  J=$LAB_TMP/$name.out
  jq -e .schema "$J" >/dev/null 2>&1 || lab_fail "$name: no JSON report (exit $RC): $(cat "$LAB_TMP/$name.err")"
}

# Why: assert a jq expression over the last report, with the report in the failure message.
check() {
  local what=$1 expr=$2
  jq -e "$expr" "$J" >/dev/null || {
    jq -c '{status: .diagnosis.status, direction: .diagnosis.direction, suspect: .diagnosis.suspect,
            fwd: .forward.verdict, rev: .reverse.verdict, errors: .errors}' "$J" >&2
    lab_fail "$what: expected $expr"
  }
}

expect_rc() { ((RC == $1)) || lab_fail "$2: exit $RC, expected $1 ($(cat "$LAB_TMP/$3.err"))"; }

lab_init
lab_build_diamond asym
lab_agents_up 4
lab_controller_oob # faults on a's access link must not cut the controller off

# ---- clean
diag clean local cvm "${FAST[@]}"
expect_rc 0 clean clean
check clean '.diagnosis.status == "healthy" and .diagnosis.direction == "none" and (.errors | length) == 0'
check clean '.forward.reached and .reverse.reached and .forward.complete and .reverse.complete'
check clean '[.forward.hops[].hosts[0].ip] == ["198.18.1.2","198.18.2.2","198.18.3.2","198.18.4.2"]'
check clean '[.reverse.hops[].hosts[0].ip] == ["198.18.4.1","198.18.6.1","198.18.5.1","198.18.1.1"]'
check clean '.alignment.asymmetric == true and .alignment.forward_only_ttls == [2] and .alignment.reverse_only_ttls == [2]'
check clean '.start_skew_ms >= 0 and .start_skew_ms < 50'
check clean '.agents.a.name == "local" and .agents.b.name == "cvm" and (.agents.a.version | length) > 0'
lab_log "ok: clean: healthy, exit 0, skew $(jq .start_skew_ms "$J") ms"

# ---- ICMP rate limiting on r2f: intermediate loss only
lab_icmp_ratelimit r2f 1000
diag ratelimit local cvm "${FAST[@]}"
lab_icmp_ratelimit r2f 0
expect_rc 0 ratelimit ratelimit
check ratelimit '.diagnosis.status == "healthy"'
check ratelimit '(.forward.hops[] | select(.ttl == 2) | .loss_pct) > 30'
check ratelimit '.forward.verdict.rate_limited_ttls | index(2)'
check ratelimit 'any(.diagnosis.rate_limited[]; .path == "forward" and .ttl == 2 and .ip == "198.18.2.2")'
lab_log "ok: rate limiting on r2f: healthy, r2f named ($(jq '.forward.hops[1].loss_pct' "$J")% at TTL 2)"

# ---- loss on a link only the forward path uses
lab_loss r2f 3 out 30
diag fwdloss local cvm "${FAST[@]}"
lab_fault_clear r2f
expect_rc 1 fwdloss fwdloss
check fwdloss '.diagnosis.status == "degraded"'
check fwdloss '.forward.verdict.destination_loss_pct > 10 and .forward.verdict.first_loss_ttl == 3'
check fwdloss '.forward.verdict.first_loss_ip == "198.18.3.2"'
lab_log "ok: loss r2f->r3: degraded, forward loss begins at 198.18.3.2 ($(jq .forward.verdict.destination_loss_pct "$J")% at b)"

# ---- destination firewall on b
lab_drop_echo b 30
diag firewall local cvm "${FAST[@]}"
lab_fault_clear b
expect_rc 1 firewall firewall
check firewall '.forward.verdict.segment == "destination_host" and .forward.verdict.first_loss_ttl == 4'
check firewall '.diagnosis.suspect.kind == "destination_host" and .diagnosis.suspect.to_ip == "198.18.4.2"'
check firewall '.reverse.verdict.destination_loss_pct == 0'
lab_log "ok: firewall on b: destination_host at 198.18.4.2"

# ---- loss in the first hop (a -> r1), with the documented reference check
lab_loss r1 1 in 30
diag firsthop local cvm "${FAST[@]}" --reference 198.18.6.2
lab_fault_clear r1
expect_rc 1 firsthop firsthop
check firsthop '.forward.verdict.first_loss_ttl == 1 and .forward.verdict.segment == "local_isp"'
check firsthop 'any(.followup[]; .from == "local" and .target == "198.18.6.2" and .loss_pct > 0)'
check firsthop 'any(.diagnosis.advice[]; test("reference"))'
lab_log "ok: loss a->r1: local_isp, reference 198.18.6.2 traced from local ($(jq '.followup[0].loss_pct' "$J")% loss)"

# ---- a latency rise on r2f -> r3
lab_delay r2f 3 out 40
diag latency local cvm -c 20 -i 0.1
lab_delay_clear r2f 3 out
expect_rc 1 latency latency
check latency '.forward.verdict.latency_jump_ttl == 3'
check latency '(.forward.hops[] | select(.ttl == 4) | .avg_ms) > 35'
check latency '.diagnosis.status == "degraded"'
lab_log "ok: +40 ms on r2f->r3: forward latency rise at TTL 3"

# ---- B as a plain address: forward only
diag plain local 198.18.4.2 "${FAST[@]}"
expect_rc 0 plain plain
check plain '.reverse == null and .forward.reached'
check plain '(.diagnosis.summary + " " + (.diagnosis.advice | join(" "))) | test("reverse"; "i")'
lab_log "ok: B a plain address: forward only, the report says the reverse was not measured"

# ---- a request over the agent's limits: refused, shown verbatim, exit 2
lab_mtrctl "$LAB_TMP/limit" diagnose local 198.18.4.2 -c 5000 -i 0.05 --format json
expect_rc 2 limit limit
grep -q 'max_cycles' "$LAB_TMP/limit.err" || lab_fail "the refusal does not name the limit: $(cat "$LAB_TMP/limit.err")"
lab_log "ok: over max_cycles: exit 2, $(grep -m1 max_cycles "$LAB_TMP/limit.err")"

# ---- the evidence bundle, history and show
lab_mtrctl "$LAB_TMP/bundle" diagnose local cvm "${FAST[@]}" -o "$LAB_TMP/bundle.d"
expect_rc 0 bundle bundle
for f in report.json report.md report.html forward.txt reverse.txt; do
  [[ -s $LAB_TMP/bundle.d/$f ]] || lab_fail "bundle: $f missing"
done
grep -q 'HOST:' "$LAB_TMP/bundle.d/forward.txt" || lab_fail "bundle: forward.txt is not in mtr's report layout"
ID=$(jq -r .id "$LAB_TMP/bundle.d/report.json")
lab_mtrctl "$LAB_TMP/hist" history --limit 3
expect_rc 0 history hist
grep -q "^$ID " "$LAB_TMP/hist.out" || lab_fail "history does not list $ID: $(cat "$LAB_TMP/hist.out")"
lab_mtrctl "$LAB_TMP/show" show "$ID" --format json
expect_rc 0 show show
J=$LAB_TMP/show.out
check show ".id == \"$ID\" and .diagnosis.status == \"healthy\" and (.forward.hops | length) == 4"
lab_mtrctl "$LAB_TMP/showmd" show "$ID" --format markdown
grep -q '198.18.2.2' "$LAB_TMP/showmd.out" || lab_fail "show --format markdown lacks the forward path"
lab_log "ok: bundle written, history lists $ID, show re-renders it"

# ---- an agent killed mid-run
lab_mtrctl_bg() { lab_exec "$LAB_CTL_NODE" "$MD_BIN/controller/mtrctl" --config "$LAB_CTL_CONFIG" "$@"; }
RC=0
lab_mtrctl_bg diagnose local cvm -c 80 -i 0.05 --format json >"$LAB_TMP/killed.out" 2>"$LAB_TMP/killed.err" &
DPID=$!
sleep 1.5
kill -9 "$LAB_AGENT_PID_B"
wait "$DPID" || RC=$?
J=$LAB_TMP/killed.out
expect_rc 3 killed killed
check killed 'any(.errors[]; .agent == "cvm")'
check killed '.forward.reached and (.forward.hops | length) == 4'
check killed '.diagnosis.status == "incomplete"'
lab_mtrctl "$LAB_TMP/hist2" history --limit 1
grep -q 'incomplete' "$LAB_TMP/hist2.out" || lab_fail "the interrupted diagnosis is not stored as incomplete: $(cat "$LAB_TMP/hist2.out")"
lab_log "ok: cvm killed mid-run: exit 3, forward kept, stored as incomplete"
lab_log "PASS"
