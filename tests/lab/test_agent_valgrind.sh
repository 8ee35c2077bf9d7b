#!/usr/bin/env bash
# test_agent_valgrind.sh: the agent daemon under valgrind (memcheck) in the asymmetric lab.
# cvm (host b) runs as `valgrind --error-exitcode=99 --leak-check=full
# --errors-for-leak-kinds=definite mtr-agent --config ...` and serves:
#   - `mtrctl diagnose local cvm -c 5 -i 0.1` (a whole session: Hello, time sync, a run, a
#     one-way stream, HopUpdates, RunResult, close);
#   - a refused controller (a certificate of the CA whose name is not in allowed_controllers);
#   - a TLS handshake without a client certificate;
#   - malformed-frame connections (zero length, oversize length, garbage after a valid
#     handshake, random bytes instead of TLS);
# then stops on SIGTERM. valgrind must exit 0 and say "ERROR SUMMARY: 0 errors" (no invalid
# access, no uninitialised use, no definite leak).
# valgrind needs a plain build: when MD_BIN is a sanitizer build (ctest runs the lab tests
# with the ASan build dir), mtr-agent, mtrctl and md-load are built from MD_SRC into
# $LAB_TMP/build first (RelWithDebInfo, ~10 s to 2 min). Skips (77) without valgrind.
# Env: MD_BIN (build dir), MD_SRC (source dir). Needs root.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_require root jq
command -v valgrind >/dev/null 2>&1 || lab_skip "valgrind is not installed (Debian: apt-get install -y valgrind)"
MD_SRC=${MD_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MD_BIN=${MD_BIN:-$MD_SRC/build}
lab_sweep_stale
lab_init

# Why: valgrind and AddressSanitizer cannot share a process; detect an ASan binary by its
# runtime (libasan linked dynamically by gcc, or __asan_init linked in statically by clang).
is_sanitized() {
  [[ $1 == *-asan* ]] && return 0
  ldd "$1/agent/mtr-agent" 2>/dev/null | grep -qE 'lib(a|ub)san' && return 0
  nm "$1/agent/mtr-agent" 2>/dev/null | grep -q '__asan_init' && return 0
  return 1
}
BIN=$MD_BIN
if [[ ! -x $BIN/agent/mtr-agent ]] || is_sanitized "$BIN" || [[ ! -x $BIN/tests/md-load ]]; then
  T0=$(lab_now)
  lab_log "building a plain (non-sanitizer) mtr-agent, mtrctl and md-load from $MD_SRC"
  BIN=$LAB_TMP/build
  { cmake -S "$MD_SRC" -B "$BIN" -DMD_SANITIZE=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    cmake --build "$BIN" -j"$(nproc)" --target mtr-agent mtrctl md-load; } >"$LAB_TMP/build.log" 2>&1 || {
    tail -n 30 "$LAB_TMP/build.log" >&2
    lab_fail "the plain build failed"
  }
  lab_log "built in $(lab_elapsed "$T0" "$(lab_now)") s"
fi
is_sanitized "$BIN" && lab_fail "$BIN/agent/mtr-agent is a sanitizer build: valgrind cannot run it"
AGENT=$BIN/agent/mtr-agent
LOAD=$BIN/tests/md-load
MD_BIN=$BIN # lab_agents_up and lab_mtrctl use it

lab_build_diamond asym
lab_agents_up 4
# cvm again, this time under valgrind (same configuration, certificates and port)
kill -TERM "$LAB_AGENT_PID_B"
wait "$LAB_AGENT_PID_B" || lab_fail "the first cvm did not stop cleanly"
VGLOG=$LAB_TMP/valgrind.log
ERR=$LAB_TMP/agent-cvm-vg.err
lab_bg b "$LAB_TMP/agent-cvm-vg.out" "$ERR" valgrind --error-exitcode=99 --leak-check=full \
  --errors-for-leak-kinds=definite --show-leak-kinds=definite --num-callers=30 \
  --log-file="$VGLOG" "$AGENT" --config "$LAB_TMP/cvm.yaml"
VG_PID=$LAB_LAST_PID
for ((i = 0; i < 600; i++)); do
  grep -q 'listening on' "$ERR" 2>/dev/null && break
  kill -0 "$VG_PID" 2>/dev/null || break
  sleep 0.1
done
grep -q 'listening on' "$ERR" || lab_fail "cvm under valgrind does not listen: $(cat "$ERR" "$VGLOG")"
lab_log "cvm runs under valgrind (pid $VG_PID)"

# ---------------------------------------------------------------- a real diagnosis
T0=$(lab_now)
lab_mtrctl "$LAB_TMP/diag" diagnose local cvm -c 5 -i 0.1 --timeout 120 --format json
((RC == 0 || RC == 1)) || lab_fail "diagnose against cvm under valgrind: exit $RC: $(cat "$LAB_TMP/diag.err")"
jq -e '.forward.reached and .reverse.reached and (.errors | length) == 0' "$LAB_TMP/diag.out" >/dev/null ||
  lab_fail "diagnose: $(jq -c '{errors, fwd: .forward.reached, rev: .reverse.reached}' "$LAB_TMP/diag.out")"
lab_log "ok: mtrctl diagnose local cvm -c 5 -i 0.1 in $(lab_elapsed "$T0" "$(lab_now)") s (status $(jq -r .diagnosis.status "$LAB_TMP/diag.out"))"

# ---------------------------------------------------------------- a refused controller
"$MD_BIN/controller/mtrctl" pki issue --dir "$LAB_PKI" --name intruder --role controller >/dev/null
sed -e "s|$LAB_PKI/ops\.|$LAB_PKI/intruder.|g" "$LAB_CTL_CONFIG" >"$LAB_TMP/intruder.yaml"
RC=0
lab_exec a "$MD_BIN/controller/mtrctl" --config "$LAB_TMP/intruder.yaml" agents cvm --timeout 60 \
  >"$LAB_TMP/intruder.out" 2>&1 || RC=$?
{ ((RC != 0)) && grep -qE "not in allowed_controllers" "$LAB_TMP/intruder.out"; } ||
  lab_fail "the intruder was not refused with the reason: exit $RC: $(cat "$LAB_TMP/intruder.out")"
lab_log "ok: a controller not in allowed_controllers is refused"

# ---------------------------------------------------------------- no certificate, malformed frames
load() { # OUT MODE N [md-load options]
  local out=$1 mode=$2 n=$3 rc=0
  shift 3
  lab_exec a "$LOAD" --connect "$LAB_B4:7447" --mode "$mode" -n "$n" -p 2 --ca "$LAB_PKI/ca.crt" \
    --cert "$LAB_PKI/ops.crt" --key "$LAB_PKI/ops.key" --tls-name cvm --time-limit 60 "$@" \
    >"$out" 2>"$out.err" || rc=$?
  set -- "$out" "$mode"
  ((rc == 0)) || lab_fail "md-load $2 exited $rc: $(cat "$1" "$1.err")"
  lab_log "md-load $2: $(sed -nE 's/^md-load: done //p' "$1")"
}
load "$LAB_TMP/nocert" nocert 1
grep -q ' refused=1 ' "$LAB_TMP/nocert" || lab_fail "the handshake without a certificate was not refused"
load "$LAB_TMP/bad" malformed 4
grep -qE ' agent_error=3 agent_closed=1 ' "$LAB_TMP/bad" || lab_fail "malformed frames: $(cat "$LAB_TMP/bad")"
load "$LAB_TMP/hello" hello 1 --hold 0.5
grep -q ' ready=1 ' "$LAB_TMP/hello" || lab_fail "a Hello after all that was not answered"

# ---------------------------------------------------------------- stop, and valgrind's verdict
T0=$(lab_now)
kill -TERM "$VG_PID"
RC=0
wait "$VG_PID" || RC=$?
for i in "${!LAB_PIDS[@]}"; do [[ ${LAB_PIDS[i]} == "$VG_PID" ]] && unset 'LAB_PIDS[i]'; done
LAB_PIDS=("${LAB_PIDS[@]}")
STOP_S=$(lab_elapsed "$T0" "$(lab_now)")
SUMMARY=$(grep -E 'ERROR SUMMARY' "$VGLOG" | tail -n 1)
LEAKS=$(grep -E 'definitely lost|indirectly lost|possibly lost|still reachable' "$VGLOG" | sed -E 's/^==[0-9]+== +//' | tr -s ' ' | paste -sd ';' -)
lab_log "figures: valgrind: ${SUMMARY#*== }; ${LEAKS:-no leak summary (nothing allocated at exit)}; stop took $STOP_S s, exit $RC"
if ((RC != 0)) || ! grep -qE 'ERROR SUMMARY: 0 errors' "$VGLOG"; then
  sed 's/^/    /' "$VGLOG" | tail -n 80 >&2
  lab_fail "valgrind: exit $RC (99: it found errors), $SUMMARY"
fi
grep -q 'stopped' "$ERR" || lab_fail "the agent did not log 'stopped': $(tail -n 5 "$ERR")"
lab_log "ok: valgrind found no errors and no definite leak in the agent (diagnosis, refusal, no certificate, malformed frames, SIGTERM)"
lab_log "PASS"
