#!/usr/bin/env bash
# test_controller_faults.sh: `mtrctl diagnose local cvm` when the agent or the way to it fails,
# in the asymmetric lab (controller and agent local on host a, agent cvm on host b). Each case
# must end, before its --timeout, with exit 3 and an error that names cvm and the cause; never
# a hang:
#   vanish     cvm killed (SIGKILL) mid-run: "closed the connection in the middle of a run"
#   partition  every packet between a and b dropped (nft in b) mid-run: "nothing heard from
#              the agent ... (network partition, or the agent is frozen?)" once the client's
#              liveness check (TimeSyncRequests while a run is open) has waited its 10 s
#   frozen     cvm stopped (SIGSTOP) mid-run: the same
#   deadline   a partition with --timeout shorter than the liveness limit: the --timeout
#              message says whom it was still waiting for (cvm, last heard of seconds ago)
#   TLS        cvm frozen before the handshake ("TLS handshake ... did not finish"), the wrong
#              pin_sha256 for cvm ("pin mismatch"), an expired controller certificate (both
#              agents refuse it: "refused our certificate: certificate expired")
# Prints each case's time. Env: MD_BIN (build dir). Needs root.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_require root jq nft
MD_BIN=${MD_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
CTL=$MD_BIN/controller/mtrctl
AGENT=$MD_BIN/agent/mtr-agent
[[ -x $CTL && -x $AGENT ]] || lab_skip "no mtrctl / mtr-agent in $MD_BIN"
lab_sweep_stale
lab_init
lab_build_diamond asym
lab_agents_up 4
CVM_PID=$LAB_AGENT_PID_B
CVM_ERR=$LAB_TMP/agent-cvm.err

# Why: the diagnosis runs in the background while the test breaks something.
# Usage: diag_bg NAME CONFIG TIMEOUT [diagnose options]; sets DPID, T0.
diag_bg() {
  local name=$1 cfg=$2 to=$3
  shift 3
  T0=$(lab_now)
  lab_exec a "$CTL" --config "$cfg" diagnose local cvm --timeout "$to" --format json "$@" \
    >"$LAB_TMP/$name.json" 2>"$LAB_TMP/$name.err" &
  DPID=$!
}

# Why: every case ends the same way: exit 3, within a time limit, an error naming cvm whose
# message matches RE (jq regex). Sets SECS.
# Usage: diag_end NAME MAX_SECONDS AGENT RE
diag_end() {
  local name=$1 max=$2 who=$3 re=$4 rc=0 j=$LAB_TMP/$1.json
  wait "$DPID" || rc=$?
  SECS=$(lab_elapsed "$T0" "$(lab_now)")
  ((rc == 3)) || lab_fail "$name: exit $rc, want 3: $(cat "$LAB_TMP/$name.err")"
  lab_fcmp "$SECS" '<=' "$max" || lab_fail "$name: took $SECS s, more than $max s"
  jq -e --arg who "$who" --arg re "$re" 'any(.errors[]; .agent == $who and (.message | test($re)))' \
    "$j" >/dev/null || {
    jq -c '.errors' "$j" >&2
    lab_fail "$name: no error for $who matching /$re/"
  }
  grep -qE "^mtrctl diagnose: $who: " "$LAB_TMP/$name.err" ||
    lab_fail "$name: stderr does not name $who: $(cat "$LAB_TMP/$name.err")"
  lab_log "figures: $name: exit 3 after $SECS s: $(jq -r --arg who "$who" --arg re "$re" \
    '[.errors[] | select(.agent == $who and (.message | test($re)))][0].message' "$j")"
}

# Why: a process this test waited for must not be signalled again by the cleanup.
forget_pid() {
  local i
  for i in "${!LAB_PIDS[@]}"; do [[ ${LAB_PIDS[i]} == "$1" ]] && unset 'LAB_PIDS[i]'; done
  LAB_PIDS=("${LAB_PIDS[@]}")
}

# Why: cvm again after it was killed, same configuration and port.
restart_cvm() {
  local i
  lab_bg b "$LAB_TMP/cvm-$1.out" "$LAB_TMP/cvm-$1.err" "$AGENT" --config "$LAB_TMP/cvm.yaml"
  CVM_PID=$LAB_LAST_PID
  CVM_ERR=$LAB_TMP/cvm-$1.err
  for ((i = 0; i < 100; i++)); do
    grep -q 'listening on' "$CVM_ERR" 2>/dev/null && return 0
    sleep 0.05
  done
  lab_fail "cvm did not start again: $(cat "$CVM_ERR")"
}

# Why: the run has started when both agents have accepted it; a fixed 1.5 s is well past
# connect + TLS + time sync + the 0.3 s start margin in this lab.
MIDRUN=1.5

# ---------------------------------------------------------------- sanity: a clean run first
diag_bg clean "$LAB_CTL_CONFIG" 30 -c 5 -i 0.1
wait "$DPID" || lab_fail "clean diagnosis failed: $(cat "$LAB_TMP/clean.err")"
lab_log "figures: clean: exit 0 after $(lab_elapsed "$T0" "$(lab_now)") s"

# ---------------------------------------------------------------- cvm vanishes mid-run
diag_bg vanish "$LAB_CTL_CONFIG" 30 -c 40 -i 0.1
sleep "$MIDRUN"
kill -9 "$CVM_PID"
wait "$CVM_PID" 2>/dev/null || true
forget_pid "$CVM_PID"
diag_end vanish 8 cvm 'the agent at 198\.18\.4\.2:7447 closed the connection in the middle of a run'
restart_cvm 2

# ---------------------------------------------------------------- a network partition mid-run
diag_bg partition "$LAB_CTL_CONFIG" 25 -c 100 -i 0.1
sleep "$MIDRUN"
lab_nft_chains b
lab_exec b nft add chain inet mdl_fault out '{ type filter hook output priority 0; policy accept; }'
lab_exec b nft add rule inet mdl_fault in ip saddr "$LAB_A4" counter drop
lab_exec b nft add rule inet mdl_fault out ip daddr "$LAB_A4" counter drop
TP=$(lab_now)
diag_end partition 20 cvm 'nothing heard from the agent at 198\.18\.4\.2:7447 for more than 10 s .*partition'
lab_log "figures: partition: the diagnosis ended $(lab_elapsed "$TP" "$(lab_now)") s after the packets stopped (liveness limit 10 s; local's own run toward the unreachable b lasts as long)"
# the drops must have been what ended it
DROPS=$(lab_exec b nft list chain inet mdl_fault in | sed -nE 's/.*counter packets ([0-9]+).*/\1/p')
lab_fault_clear b
lab_log "ok: partition${DROPS:+ ($DROPS packets dropped)}"

# ---------------------------------------------------------------- cvm frozen mid-run
diag_bg frozen "$LAB_CTL_CONFIG" 25 -c 100 -i 0.1
sleep "$MIDRUN"
kill -STOP "$CVM_PID"
diag_end frozen 20 cvm 'nothing heard from the agent at 198\.18\.4\.2:7447 for more than 10 s'
kill -CONT "$CVM_PID"

# ---------------------------------------------------------------- --timeout before the liveness limit
diag_bg deadline "$LAB_CTL_CONFIG" 5 -c 100 -i 0.1
sleep "$MIDRUN"
lab_nft_chains b
lab_exec b nft add chain inet mdl_fault out '{ type filter hook output priority 0; policy accept; }'
lab_exec b nft add rule inet mdl_fault in ip saddr "$LAB_A4" counter drop
lab_exec b nft add rule inet mdl_fault out ip daddr "$LAB_A4" counter drop
RC=0
wait "$DPID" || RC=$?
SECS=$(lab_elapsed "$T0" "$(lab_now)")
lab_fault_clear b
((RC == 3)) || lab_fail "deadline: exit $RC, want 3: $(cat "$LAB_TMP/deadline.err")"
# after --timeout: up to 3 s for the cancelled runs' results, 2 s for the silent side's close
lab_fcmp "$SECS" '<=' 11 || lab_fail "deadline: took $SECS s with --timeout 5"
jq -e 'any(.errors[]; .code == "timeout" and (.message | test("--timeout 5 s: stopped .*cvm: its run at [0-9]+/100 cycles, last heard of ([3-9]|[1-9][0-9])\\.[0-9] s ago")))' \
  "$LAB_TMP/deadline.json" >/dev/null || {
  jq -c '.errors' "$LAB_TMP/deadline.json" >&2
  lab_fail "deadline: the --timeout message does not name cvm as the silent one"
}
lab_log "figures: deadline: exit 3 after $SECS s (--timeout 5): $(jq -r '[.errors[] | select(.code == "timeout")][0].message' "$LAB_TMP/deadline.json")"

# ---------------------------------------------------------------- TLS failures
# the handshake never completes: cvm frozen before we connect
kill -STOP "$CVM_PID"
diag_bg tlsstall "$LAB_CTL_CONFIG" 30 -c 5 -i 0.1
diag_end tlsstall 16 cvm 'timeout: TLS handshake with 198\.18\.4\.2:7447 did not finish within [0-9.]+ s'
kill -CONT "$CVM_PID"

# the certificate cvm presents is not the pinned one
PIN=$("$CTL" pki issue --dir "$LAB_PKI" --name decoy --role agent | sed -n 's/^pin_sha256: //p')
[[ -n $PIN ]] || lab_fail "no pin from mtrctl pki issue"
sed -E "s|^  cvm: +\{ address: \"([^\"]+)\" \}|  cvm: { address: \"\1\", pin_sha256: \"$PIN\" }|" \
  "$LAB_CTL_CONFIG" >"$LAB_TMP/pin.yaml"
grep -q "pin_sha256" "$LAB_TMP/pin.yaml" || lab_fail "could not pin cvm in $LAB_TMP/pin.yaml"
diag_bg pin "$LAB_TMP/pin.yaml" 30 -c 5 -i 0.1
diag_end pin 5 cvm 'pin mismatch: agent certificate at 198\.18\.4\.2:7447: expected .*agents\.cvm\.pin_sha256'

# our certificate has expired: the agents refuse it during the handshake
"$CTL" pki issue --dir "$LAB_PKI" --name ops-expired --role controller --not-after-seconds -60 >/dev/null
sed -e "s|$LAB_PKI/ops\.|$LAB_PKI/ops-expired.|g" "$LAB_CTL_CONFIG" >"$LAB_TMP/expired.yaml"
diag_bg expired "$LAB_TMP/expired.yaml" 30 -c 5 -i 0.1
diag_end expired 5 cvm 'not authorised: the agent at 198\.18\.4\.2:7447 refused our certificate: certificate expired'

# cvm still serves after all of it
diag_bg after "$LAB_CTL_CONFIG" 30 -c 5 -i 0.1
wait "$DPID" || lab_fail "the diagnosis after the faults failed: $(cat "$LAB_TMP/after.err")"
lab_log "figures: after: exit 0 after $(lab_elapsed "$T0" "$(lab_now)") s"

# both agents stop cleanly; nothing anywhere reported by a sanitizer (ASan builds)
for pid in "$LAB_AGENT_PID_A" "$CVM_PID"; do
  rc=0
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  forget_pid "$pid"
  ((rc == 0)) || lab_fail "agent $pid exited $rc after SIGTERM"
done
if grep -lE 'Sanitizer|runtime error' "$LAB_TMP"/*.err >/dev/null 2>&1; then
  grep -lE 'Sanitizer|runtime error' "$LAB_TMP"/*.err >&2
  lab_fail "sanitizer reports (files above)"
fi
lab_log "PASS"
