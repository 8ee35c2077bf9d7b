#!/usr/bin/env bash
# test_agent_load.sh: mtr-agent under connection load, in the asymmetric lab. The agent under
# load is cvm (host b, 198.18.4.2:7447); the load comes from md-load (tests/load_tool.c) in
# host a (198.18.1.1), router r1 (198.18.2.1) and router r3 (198.18.4.1), so the agent sees
# several peers:
#   1. handshake limit (policy.handshake_timeout 2 s): connections that send nothing, and
#      handshakes stalled after the first bytes of a ClientHello, are dropped after ~2 s;
#   2. with max_connections 256: 200 controllers with real mutual TLS sessions (Hello, then
#      idle) held at once, and meanwhile 1000 TLS handshakes without a client certificate
#      (all refused) and 400 connections with malformed input (zero length, oversize length,
#      garbage after a valid handshake, random bytes instead of TLS); while all that runs a
#      well-behaved controller's `mtrctl agents` and `mtrctl diagnose local cvm -c 5 -i 0.1`
#      succeed;
#   3. the agent's memory (VmRSS/VmHWM) is printed before, during and after and stays under
#      a bound (64 MiB; 768 MiB for an ASan build, whose allocator keeps freed memory in
#      quarantine); its open file descriptors are back to the starting count within 5 s;
#   4. the log: connections that never got a session up are logged once per peer address
#      (per minute), and the summary at stop counts the others exactly;
#   5. a second agent with max_connections 50: 50 sessions held, further connections from two
#      peers are closed at once, one log line per peer, the summary counts the rest; once the
#      held sessions go, new ones are served again.
# Every figure is printed ("[lab ...] figures: ..."). Env: MD_BIN (build dir). Needs root.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_require root jq
MD_BIN=${MD_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
AGENT=$MD_BIN/agent/mtr-agent
CTL=$MD_BIN/controller/mtrctl
LOAD=$MD_BIN/tests/md-load
for f in "$AGENT" "$CTL" "$LOAD"; do [[ -x $f ]] || lab_skip "$f is not built"; done
lab_sweep_stale
lab_init

# Why: an ASan build's RSS includes the allocator's quarantine; its bound must be larger.
ASAN=0
if ldd "$AGENT" 2>/dev/null | grep -q libasan || nm "$AGENT" 2>/dev/null | grep -q __asan_init; then ASAN=1; fi
RSS_BOUND_KB=$((64 * 1024))
((ASAN)) && RSS_BOUND_KB=$((768 * 1024))

# Why: the figures of one process, for the log and the assertions.
kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
figures() { # PID LABEL
  printf '%s: VmRSS %s kB, VmHWM %s kB, fds %s\n' "$2" "$(kb "$1" VmRSS)" "$(kb "$1" VmHWM)" "$(fds "$1")"
}

# Why: the "during" figures are the worst seen while the load runs, not one lucky sample.
# Usage: sampler_start PID FILE; ...; sampler_stop  (FILE gets "rss hwm fds" lines)
sampler_start() {
  local pid=$1 file=$2
  (while kill -0 "$pid" 2>/dev/null; do
    printf '%s %s %s\n' "$(kb "$pid" VmRSS)" "$(kb "$pid" VmHWM)" "$(fds "$pid")"
    sleep 0.1
  done) >"$file" 2>/dev/null &
  SAMPLER=$!
  LAB_PIDS+=("$SAMPLER")
}
sampler_stop() { kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; }
col_max() { awk -v c="$2" '$c > m { m = $c } END { print m + 0 }' "$1"; }

# Why: a daemon's log is written as it runs; wait for a line rather than sleep.
wait_log() { # FILE PATTERN [SECONDS]
  local i
  for ((i = 0; i < ${3:-10} * 20; i++)); do
    grep -qE -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# Why: one md-load run in a node, in the foreground; its summary line is in $OUT.sum.
# Usage: load NODE OUT ADDR:PORT MODE N PARALLEL [more md-load options]
load() {
  local node=$1 out=$2 where=$3 mode=$4 n=$5 p=$6 rc=0
  shift 6
  lab_exec "$node" "$LOAD" --connect "$where" --mode "$mode" -n "$n" -p "$p" --ca "$LAB_PKI/ca.crt" \
    --cert "$LAB_PKI/ops.crt" --key "$LAB_PKI/ops.key" --tls-name cvm --time-limit 90 "$@" \
    >"$out" 2>"$out.err" || rc=$?
  grep '^md-load: done' "$out" >"$out.sum" || true
  ((rc == 0)) || lab_fail "md-load $mode from $node exited $rc: $(cat "$out" "$out.err")"
}
# Why: the same in the background (a lab_bg process); sets LOAD_PID.
load_bg() { # NODE OUT ADDR:PORT MODE N PARALLEL [options]
  local node=$1 out=$2 where=$3 mode=$4 n=$5 p=$6
  shift 6
  lab_bg "$node" "$out" "$out.err" "$LOAD" --connect "$where" --mode "$mode" -n "$n" -p "$p" \
    --ca "$LAB_PKI/ca.crt" --cert "$LAB_PKI/ops.crt" --key "$LAB_PKI/ops.key" --tls-name cvm \
    --time-limit 120 "$@"
  LOAD_PID=$LAB_LAST_PID
}
# Why: wait for a background md-load and insist on exit 0. Usage: load_wait PID OUT
load_wait() {
  local rc=0
  wait "$1" || rc=$?
  grep '^md-load: done' "$2" >"$2.sum" || true
  ((rc == 0)) || lab_fail "md-load ($2) exited $rc: $(cat "$2" "$2.err")"
  [[ ! -s $2.err ]] || sed 's/^/    /' "$2.err" >&2 # its notes on slow or failed connections
}
# Why: one field of an md-load summary line ("ready", "refused", ...).
field() { sed -nE "s/.* $2=([^ ]+).*/\1/p" "$1.sum"; }

# Why: stop an agent as systemd does: SIGTERM, exit 0 within seconds, no sanitizer report.
stop_agent() { # PID ERRFILE
  local rc=0 i
  kill -TERM "$1"
  wait "$1" || rc=$?
  for i in "${!LAB_PIDS[@]}"; do [[ ${LAB_PIDS[i]} == "$1" ]] && unset 'LAB_PIDS[i]'; done
  LAB_PIDS=("${LAB_PIDS[@]}")
  if ((rc != 0)) || grep -qE 'Sanitizer|runtime error|LeakSanitizer' "$2"; then
    tail -n 40 "$2" | sed 's/^/    /' >&2
    lab_fail "agent exited $rc after SIGTERM or reported a sanitizer error"
  fi
}

lab_build_diamond asym
LAB_AGENT_POLICY_EXTRA="  max_connections: 256
  handshake_timeout: 2" lab_agents_up 4
PID=$LAB_AGENT_PID_B
LOG=$LAB_TMP/agent-cvm.err
B=$LAB_B4:7447
[[ $(readlink "/proc/$PID/exe") == *mtr-agent ]] || lab_fail "pid $PID is not the agent"
lab_log "agent cvm: pid $PID, ASan build: $ASAN, RSS bound $((RSS_BOUND_KB / 1024)) MiB"
# one controller session first, so that what a first session allocates is in the baseline
lab_mtrctl "$LAB_TMP/warm" agents cvm --timeout 10
((RC == 0)) || lab_fail "mtrctl agents before the load: exit $RC: $(cat "$LAB_TMP/warm.err")"
sleep 0.3
FDS0=$(fds "$PID")
lab_log "figures: before: $(figures "$PID" agent)"

# ---------------------------------------------------------------- 1. the handshake limit
T0=$(lab_now)
load a "$LAB_TMP/silent" "$B" silent 20 20 &
P1=$!
load r3 "$LAB_TMP/stall" "$B" stall 20 20
wait "$P1" || lab_fail "md-load silent failed: $(cat "$LAB_TMP/silent" "$LAB_TMP/silent.err")"
for m in silent stall; do
  s=$LAB_TMP/$m
  [[ $(field "$s" agent_closed) == 20 ]] || lab_fail "$m: not all 20 closed by the agent: $(cat "$s.sum")"
  IFS=/ read -r cmin cavg cmax <<<"$(field "$s" close_after_s)"
  { lab_in_range "$cmin" 1.8 3.5 && lab_in_range "$cmax" 1.8 3.5; } ||
    lab_fail "$m: dropped after $cmin..$cmax s, expected ~2 s (handshake_timeout 2): $(cat "$s.sum")"
  lab_log "figures: $m: 20 connections dropped by the agent after min/avg/max $cmin/$cavg/$cmax s (handshake_timeout 2 s)"
done
lab_log "ok: silent peers and stalled handshakes are dropped at policy.handshake_timeout ($(lab_elapsed "$T0" "$(lab_now)") s)"

# ---------------------------------------------------------------- 2. load, and a controller meanwhile
sampler_start "$PID" "$LAB_TMP/samples"
T0=$(lab_now)
load_bg a "$LAB_TMP/hello" "$B" hello 200 50 --hold 120
HELLO_PID=$LOAD_PID
wait_log "$LAB_TMP/hello" '^md-load: holding' 60 || lab_fail "200 sessions not up: $(cat "$LAB_TMP/hello" "$LAB_TMP/hello.err")"
grep -q '^md-load: holding ready=200 ' "$LAB_TMP/hello" || lab_fail "not all 200 sessions ready: $(cat "$LAB_TMP/hello")"
FDS_HELD=$(fds "$PID")
lab_log "figures: 200 controllers connected ($(sed -nE 's/.*setup_s=([0-9.]+).*/\1/p' "$LAB_TMP/hello") s to set up): $(figures "$PID" agent)"
((FDS_HELD >= FDS0 + 200)) || lab_fail "200 sessions held but the agent has only $FDS_HELD fds (from $FDS0)"

# spread over ~3 s so that the controller's work below runs inside the load; at most 16 of
# each in flight (200 + 16 + 16 + the controller stay under max_connections 256)
load_bg r3 "$LAB_TMP/nocert" "$B" nocert 1000 16 --rate 330
NOCERT_PID=$LOAD_PID
load_bg r1 "$LAB_TMP/malformed" "$B" malformed 400 16 --rate 130
BAD_PID=$LOAD_PID
running() { # what of the load is still running
  local w=()
  kill -0 "$NOCERT_PID" 2>/dev/null && w+=(nocert)
  kill -0 "$BAD_PID" 2>/dev/null && w+=(malformed)
  echo "${w[*]:-nothing}"
}

# the well-behaved controller, while all of that runs
T1=$(lab_now)
lab_mtrctl "$LAB_TMP/agents" agents --timeout 10
AGENTS_S=$(lab_elapsed "$T1" "$(lab_now)")
((RC == 0)) || lab_fail "mtrctl agents under load: exit $RC: $(cat "$LAB_TMP/agents.out" "$LAB_TMP/agents.err")"
grep -qE '^cvm +.* ok ' "$LAB_TMP/agents.out" || lab_fail "mtrctl agents: cvm not ok: $(cat "$LAB_TMP/agents.out")"
lab_log "figures: during the load: $(figures "$PID" agent)"
RUN_BEFORE=$(running)
[[ $RUN_BEFORE == "nocert malformed" ]] || lab_fail "the load ended before the diagnosis started ($RUN_BEFORE still running)"
T1=$(lab_now)
lab_mtrctl "$LAB_TMP/diag" diagnose local cvm -c 5 -i 0.1 --timeout 60 --format json
DIAG_S=$(lab_elapsed "$T1" "$(lab_now)")
((RC == 0 || RC == 1)) || lab_fail "mtrctl diagnose under load: exit $RC: $(cat "$LAB_TMP/diag.err")"
jq -e '.forward.reached and .reverse.reached and (.errors | length) == 0' "$LAB_TMP/diag.out" >/dev/null ||
  lab_fail "diagnose under load: $(jq -c '{errors, fwd: .forward.reached, rev: .reverse.reached}' "$LAB_TMP/diag.out")"
lab_log "figures: mtrctl agents ${AGENTS_S} s, mtrctl diagnose local cvm -c 5 -i 0.1 ${DIAG_S} s (status $(jq -r .diagnosis.status "$LAB_TMP/diag.out"); load running at its start: $RUN_BEFORE, at its end: $(running))"
lab_log "figures: during the load: $(figures "$PID" agent)"

load_wait "$NOCERT_PID" "$LAB_TMP/nocert"
load_wait "$BAD_PID" "$LAB_TMP/malformed"
[[ $(field "$LAB_TMP/nocert" refused) == 1000 ]] || lab_fail "not all 1000 handshakes without a certificate refused: $(cat "$LAB_TMP/nocert.sum")"
BAD_ENDED=$(($(field "$LAB_TMP/malformed" agent_error) + $(field "$LAB_TMP/malformed" agent_closed)))
((BAD_ENDED == 400)) || lab_fail "malformed: not all 400 ended by the agent: $(cat "$LAB_TMP/malformed.sum")"
lab_log "figures: nocert: $(cut -d' ' -f3- "$LAB_TMP/nocert.sum")"
lab_log "figures: malformed: $(cut -d' ' -f3- "$LAB_TMP/malformed.sum")"
kill -0 "$HELLO_PID" || lab_fail "the 200 idle controllers did not stay connected: $(cat "$LAB_TMP/hello")"
kill -TERM "$HELLO_PID"
load_wait "$HELLO_PID" "$LAB_TMP/hello"
[[ $(field "$LAB_TMP/hello" ready) == 200 && $(field "$LAB_TMP/hello" agent_closed) == 0 ]] ||
  lab_fail "the idle controllers: $(cat "$LAB_TMP/hello.sum")"
LOAD_S=$(lab_elapsed "$T0" "$(lab_now)")
sampler_stop
RSS_MAX=$(col_max "$LAB_TMP/samples" 1)
HWM_MAX=$(col_max "$LAB_TMP/samples" 2)
FDS_MAX=$(col_max "$LAB_TMP/samples" 3)
lab_log "figures: the load phase took $LOAD_S s; worst seen during it: VmRSS $RSS_MAX kB, VmHWM $HWM_MAX kB, fds $FDS_MAX ($(wc -l <"$LAB_TMP/samples") samples)"

# ---------------------------------------------------------------- 3. memory and descriptors after
FDS_AFTER=-1
for ((i = 0; i < 50; i++)); do
  FDS_AFTER=$(fds "$PID")
  ((FDS_AFTER == FDS0)) && break
  sleep 0.1
done
lab_log "figures: after: $(figures "$PID" agent) (fds back to $FDS_AFTER in $(awk -v i="$i" 'BEGIN { printf "%.1f", i / 10 }') s; start $FDS0)"
((FDS_AFTER == FDS0)) || {
  ls -l "/proc/$PID/fd" >&2
  lab_fail "the agent has $FDS_AFTER fds 5 s after the load, $FDS0 before"
}
HWM=$(kb "$PID" VmHWM)
((HWM < RSS_BOUND_KB)) || lab_fail "VmHWM $HWM kB is over the bound $RSS_BOUND_KB kB"
((RSS_MAX < RSS_BOUND_KB)) || lab_fail "VmRSS reached $RSS_MAX kB, over the bound $RSS_BOUND_KB kB"
lab_log "ok: memory bounded (VmHWM $HWM kB < $RSS_BOUND_KB kB), fds back to $FDS0"
# the agent still serves
lab_mtrctl "$LAB_TMP/agents2" agents cvm --timeout 10
((RC == 0)) || lab_fail "mtrctl agents after the load: exit $RC: $(cat "$LAB_TMP/agents2.err")"

# ---------------------------------------------------------------- 4. the log, once per peer
# early ends: 40 (handshake limit) + 1000 (no certificate) + 400 (malformed)
EARLY=$((20 + 20 + 1000 + 400))
lab_log "figures: the agent logged $(wc -l <"$LOG") lines in all ($EARLY connections never got a session up, ~210 did)"
for peer in 198.18.1.1 198.18.2.1 198.18.4.1; do
  n=$(grep -cE "connection from ${peer//./\\.}:[0-9]+ cert '[^']*' \([0-9.]+ s, 0 runs\): " "$LOG" || true)
  n_early=$(grep -E "connection from ${peer//./\\.}:[0-9]+ " "$LOG" | grep -cvE 'closed by the controller' || true)
  ((n_early >= 1 && n_early <= 2)) || {
    grep -E "connection from ${peer//./\\.}:" "$LOG" | grep -v 'closed by the controller' | head -n 5 >&2
    lab_fail "$peer: $n_early lines about early ends, expected one (per minute)"
  }
  lab_log "figures: peer $peer: $n connection lines, $n_early about early ends"
done
stop_agent "$PID" "$LOG"
SUPPRESSED=$(sed -nE 's/.*connections from [0-9.]+: ([0-9]+) more ended before their session was up.*/\1/p' "$LOG" | awk '{ s += $1 } END { print s + 0 }')
LOGGED=$(grep -E "connection from [0-9.]+:[0-9]+ " "$LOG" | grep -cvE 'closed by the controller|closed: the agent is shutting down' || true)
grep -E 'more ended before their session was up' "$LOG" | sed 's/^/    /' >&2
((SUPPRESSED + LOGGED == EARLY)) ||
  lab_fail "log accounting: $LOGGED lines + $SUPPRESSED counted in summaries, expected $EARLY early ends"
lab_log "ok: $EARLY early ends: $LOGGED logged (once per peer), $SUPPRESSED counted in the summary lines at stop"

# ---------------------------------------------------------------- 5. max_connections 50
cat >"$LAB_TMP/limit.yaml" <<EOF
name: cvm
listen: ["$LAB_B4:7448"]
tls: { cert: $LAB_PKI/cvm.crt, key: $LAB_PKI/cvm.key, ca: $LAB_PKI/ca.crt, allowed_controllers: [ops] }
policy:
  allow_targets: ["198.18.0.0/15"]
  max_connections: 50
EOF
LOG2=$LAB_TMP/limit.err
lab_bg b "$LAB_TMP/limit.out" "$LOG2" "$AGENT" --config "$LAB_TMP/limit.yaml"
PID2=$LAB_LAST_PID
wait_log "$LOG2" 'listening on' || lab_fail "the second agent does not listen: $(cat "$LOG2")"
B2=$LAB_B4:7448
FDS2=$(fds "$PID2")
load_bg a "$LAB_TMP/held" "$B2" hello 50 25 --hold 120
HELD_PID=$LOAD_PID
wait_log "$LAB_TMP/held" '^md-load: holding' 60 || lab_fail "50 sessions not up: $(cat "$LAB_TMP/held")"
grep -q '^md-load: holding ready=50 ' "$LAB_TMP/held" || lab_fail "not all 50 ready: $(cat "$LAB_TMP/held")"
load a "$LAB_TMP/over_a" "$B2" hello 30 10
load r3 "$LAB_TMP/over_r3" "$B2" nocert 30 10
for s in over_a over_r3; do
  [[ $(field "$LAB_TMP/$s" agent_closed) == 30 ]] || lab_fail "$s: not all 30 closed at once: $(cat "$LAB_TMP/$s.sum")"
  lab_log "figures: over the limit ($s): $(cut -d' ' -f3- "$LAB_TMP/$s.sum")"
done
lab_log "figures: at the limit: $(figures "$PID2" agent2)"
for peer in 198.18.1.1 198.18.4.1; do
  n=$(grep -cE "connection from ${peer//./\\.}:[0-9]+ refused: policy.max_connections 50 reached" "$LOG2" || true)
  ((n == 1)) || lab_fail "$peer: $n lines about max_connections, expected 1: $(grep max_connections "$LOG2" | head -n 5)"
done
# a controller that comes now is told why it cannot get in
sed -e "s|\"$LAB_B4:7447\"|\"$LAB_B4:7448\"|" "$LAB_CTL_CONFIG" >"$LAB_TMP/limit-ctl.yaml"
RC=0
lab_exec a "$CTL" --config "$LAB_TMP/limit-ctl.yaml" agents cvm --timeout 10 >"$LAB_TMP/full.out" 2>&1 || RC=$?
{ ((RC != 0)) && grep -q 'policy.max_connections' "$LAB_TMP/full.out"; } ||
  lab_fail "mtrctl agents at the limit: exit $RC, no clear reason: $(cat "$LAB_TMP/full.out")"
lab_log "figures: a controller at the limit: $(grep -E '^cvm ' "$LAB_TMP/full.out" | tr -s ' ')"
lab_log "ok: max_connections 50: 60 connections over the limit closed at once, one log line per peer"
kill -TERM "$HELD_PID"
load_wait "$HELD_PID" "$LAB_TMP/held"
load a "$LAB_TMP/again" "$B2" hello 5 5 --hold 0.5
[[ $(field "$LAB_TMP/again" ready) == 5 ]] || lab_fail "no room again after the held sessions left: $(cat "$LAB_TMP/again.sum")"
lab_exec a "$CTL" --config "$LAB_TMP/limit-ctl.yaml" agents cvm --timeout 10 >"$LAB_TMP/room.out" 2>&1 ||
  lab_fail "mtrctl agents once there is room: $(cat "$LAB_TMP/room.out")"
for ((i = 0; i < 50; i++)); do
  (($(fds "$PID2") == FDS2)) && break
  sleep 0.1
done
(($(fds "$PID2") == FDS2)) || lab_fail "agent2 has $(fds "$PID2") fds, $FDS2 at start"
lab_log "figures: agent2 after: $(figures "$PID2" agent2)"
stop_agent "$PID2" "$LOG2"
grep -E 'more refused at once' "$LOG2" | sed 's/^/    /' >&2
# from a: 30 (md-load) + 1 (mtrctl agents) refused, one logged
grep -qE "warn: connections from 198\.18\.1\.1: 30 more refused at once in the last [0-9]+ s" "$LOG2" ||
  lab_fail "no summary for 198.18.1.1 (30 more refused) at stop"
grep -qE "warn: connections from 198\.18\.4\.1: 29 more refused at once in the last [0-9]+ s.*policy.max_connections 50 reached" "$LOG2" ||
  lab_fail "no summary for 198.18.4.1 (29 more refused) at stop"
lab_log "ok: the summary at stop counts the other refusals of each peer (30 and 29); room again once sessions left"
lab_log "PASS"
