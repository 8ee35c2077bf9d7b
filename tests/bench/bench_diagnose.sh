#!/usr/bin/env bash
# bench_diagnose.sh: `mtrctl diagnose local cvm` (both directions, TLS set-up included) against
# one `mtr --report` run in one direction, with the same cycles and interval, on the
# asymmetric lab. Prints both wall times, their ratio and start_skew_ms. Not a test: run it by
# hand, as root, from a build (MD_BIN=<build dir>, default ./build).
#
#   bash tests/bench/bench_diagnose.sh [-c CYCLES] [-i INTERVAL] [-r REPEAT]
#
# mtr waits its whole grace time (5 s by default) after the last cycle; the agents stop as soon
# as every probe is answered. Targets (issue 4): ratio <= 0.75, skew <= 50 ms.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export MD_BIN=${MD_BIN:-$HERE/../../build} MD_SRC=${MD_SRC:-$HERE/../..}
source "$HERE/../lab/lib.sh"

CYCLES=10
INTERVAL=1
REPEAT=3
while getopts "c:i:r:h" opt; do
  case $opt in
    c) CYCLES=$OPTARG ;;
    i) INTERVAL=$OPTARG ;;
    r) REPEAT=$OPTARG ;;
    *) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 2 ;;
  esac
done
lab_require root ip mtr jq
[[ -x $MD_BIN/controller/mtrctl ]] || lab_fail "no $MD_BIN/controller/mtrctl: build first"
lab_sweep_stale
lab_init
lab_build_diamond asym
lab_agents_up 4

# Why: wall time of one command in host A's namespace, in seconds.
wall() {
  local t0 t1
  t0=$(lab_now)
  lab_exec "$LAB_A" "$@" >"$LAB_TMP/out" 2>"$LAB_TMP/err" || true
  t1=$(lab_now)
  lab_elapsed "$t0" "$t1"
}

printf '\nbench_diagnose: -c %s -i %s on the asymmetric lab, %s run(s) each\n' "$CYCLES" "$INTERVAL" "$REPEAT"
printf '%-4s %14s %20s %8s %10s\n' run mtr_report_s diagnose_both_ways_s ratio skew_ms
for ((i = 1; i <= REPEAT; i++)); do
  m=$(wall mtr --report -n -c "$CYCLES" -i "$INTERVAL" "$LAB_B4")
  d=$(wall "$MD_BIN/controller/mtrctl" --config "$LAB_CTL_CONFIG" diagnose local cvm -n \
    -c "$CYCLES" -i "$INTERVAL" --format json)
  skew=$(jq -r '.start_skew_ms // "null"' "$LAB_TMP/out")
  awk -v i="$i" -v m="$m" -v d="$d" -v s="$skew" \
    'BEGIN { printf "%-4d %14.2f %20.2f %8.2f %10s\n", i, m, d, d / m, s }'
done
printf '(target: ratio <= 0.75 and skew <= 50 ms; mtr waits its 5 s grace time, the agents do not)\n'
