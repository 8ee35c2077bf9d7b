#!/usr/bin/env bash
# bench_agent.sh: the agent daemon's memory and CPU. Starts the two lab agents, reads the
# agent's RSS idle (after one `mtrctl agents` handshake), then orders 16 runs at once
# (16 `mtrctl diagnose local <address>` with B a plain address, so all 16 run on agent
# "local"), and prints its peak RSS (VmHWM) and the CPU it spent per run. Not a test: run by
# hand as root from a build (MD_BIN=<build dir>, default ./build).
#
#   bash tests/bench/bench_agent.sh [-n RUNS] [-c CYCLES] [-i INTERVAL]
#
# Targets (issue 3): at most 8 MiB idle and 12 MiB with 16 runs in flight.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export MD_BIN=${MD_BIN:-$HERE/../../build} MD_SRC=${MD_SRC:-$HERE/../..}
source "$HERE/../lab/lib.sh"
RUNS=16 CYCLES=20 INTERVAL=0.5
while getopts "n:c:i:h" opt; do
  case $opt in
    n) RUNS=$OPTARG ;;
    c) CYCLES=$OPTARG ;;
    i) INTERVAL=$OPTARG ;;
    *) sed -n '2,11p' "${BASH_SOURCE[0]}"; exit 2 ;;
  esac
done
lab_require root ip jq
lab_sweep_stale
lab_init
lab_build_diamond asym
LAB_AGENT_POLICY_EXTRA="  max_concurrent_runs: $((RUNS + 4))" LAB_AGENT_PPS=100000 lab_agents_up 4
PID=$LAB_AGENT_PID_A
# the agent is the child of `ip netns exec` only when exec'd; find the real process
APID=$(pgrep -f "mtr-agent --config $LAB_TMP/local.yaml" | head -1)
[[ -n $APID ]] || APID=$PID
kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$APID/status"; }
# CPU time in ns the scheduler counted for the agent (all its threads): exact, not ticks
cpu_ns() { awk '{ print $1 }' "/proc/$APID/schedstat"; }
# proportional (PSS) and private (USS) kB: RSS counts every shared library page the
# agent maps (libc, libcrypto) in full, however many other processes share it
rollup() { awk -v k="$1:" '$1 == k { s += $2 } END { print s }' "/proc/$APID/smaps_rollup"; }
ctl=("$MD_BIN/controller/mtrctl" --config "$LAB_CTL_CONFIG")
lab_exec "$LAB_A" "${ctl[@]}" agents >/dev/null
sleep 1 # idle: the handshake's connection has closed and its memory is freed
idle=$(kb VmRSS)
idle_pss=$(rollup Pss)
idle_uss=$(( $(rollup Private_Clean) + $(rollup Private_Dirty) ))
t0=$(cpu_ns)
targets=(198.18.4.2 198.18.3.2 198.18.2.2 198.18.6.2)
pids=()
for ((i = 0; i < RUNS; i++)); do
  lab_exec "$LAB_A" "${ctl[@]}" diagnose local "${targets[$((i % 4))]}" -n -c "$CYCLES" \
    -i "$INTERVAL" --format json >"$LAB_TMP/run$i.json" 2>"$LAB_TMP/run$i.err" &
  pids+=($!)
done
peak_live=0
running() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while running; do
  r=$(kb VmRSS)
  ((r > peak_live)) && peak_live=$r
  sleep 0.2
done
for p in "${pids[@]}"; do wait "$p" || true; done
t1=$(cpu_ns)
ok=$(for f in "$LAB_TMP"/run*.json; do jq -e '.forward.complete' "$f" >/dev/null 2>&1 && echo x; done | wc -l)
printf '\nbench_agent: %d runs at once on one agent, -c %s -i %s\n' "$RUNS" "$CYCLES" "$INTERVAL"
printf '%-28s %10s\n' figure value
printf '%-28s %10.2f\n' "idle RSS (MiB)" "$(awk -v k="$idle" 'BEGIN { print k / 1024 }')"
printf '%-28s %10.2f\n' "  of it PSS (MiB)" "$(awk -v k="$idle_pss" 'BEGIN { print k / 1024 }')"
printf '%-28s %10.2f\n' "  of it private (MiB)" "$(awk -v k="$idle_uss" 'BEGIN { print k / 1024 }')"
printf '%-28s %10.2f\n' "RSS with $RUNS runs (MiB)" "$(awk -v k="$peak_live" 'BEGIN { print k / 1024 }')"
printf '%-28s %10.2f\n' "VmHWM peak (MiB)" "$(awk -v k="$(kb VmHWM)" 'BEGIN { print k / 1024 }')"
printf '%-28s %10.2f\n' "CPU per run (ms)" "$(awk -v a="$t0" -v b="$t1" -v n="$RUNS" 'BEGIN { print (b - a) / 1e6 / n }')"
printf '%-28s %10d\n' "runs completed" "$ok"
printf '(targets: idle <= 8 MiB, %d runs <= 12 MiB)\n' "$RUNS"
