#!/usr/bin/env bash
# bench_trace.sh: `mtr-agent trace` against mtr on the same linear lab with the same cycles,
# interval and grace time; prints wall time, CPU time per 1000 probes (user+sys) and peak RSS
# side by side. Not a test: run it by hand, as root.
#
#   bash tests/bench/bench_trace.sh [-c CYCLES] [-i INTERVAL] [-G GRACE] [-p icmp|udp|tcp]
#                                   [-6] [-r REPEAT]
# Environment: MD_BIN=<build dir> uses that build's agent/mtr-agent; without it the agent is
# built from MD_SRC (default: this checkout) into a temporary directory, with build type
# BENCH_BUILD_TYPE (default RelWithDebInfo, the project's default).
#
# Measurement: md-rusage (tests/bench/md_rusage.c, built with the tests) around each tool
# inside the source namespace: wait4()'s microsecond CPU times, which include the waited-for
# children, so mtr's figures include its mtr-packet helper (mtr waits for it at exit); peak
# RSS is the largest single process (ru_maxrss), not a sum. Both tools print mtr's --report
# layout; probes = the sum of the Snt column. A third row, "floor", is md-floor (ICMP only).
# mtr always waits the whole grace time after its last cycle; the agent may stop as soon as
# every probe is answered, which shows in wall time only.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../lab/lib.sh"

CYCLES=100
INTERVAL=0.1
GRACE=1
PROTO=icmp
FAM=4
REPEAT=1

# Why: command-line options with mtr's letters.
parse_args() {
  local opt
  while getopts "c:i:G:p:6r:h" opt; do
    case $opt in
      c) CYCLES=$OPTARG ;;
      i) INTERVAL=$OPTARG ;;
      G) GRACE=$OPTARG ;;
      p) PROTO=$OPTARG ;;
      6) FAM=6 ;;
      r) REPEAT=$OPTARG ;;
      *)
        sed -n '2,9p' "${BASH_SOURCE[0]}"
        exit 2
        ;;
    esac
  done
}

# Why: the probe-type options, the same letters for both tools.
proto_opts() {
  case $PROTO in
    icmp) ;;
    udp) echo -u ;;
    tcp) printf '%s\n' -T -P 9 ;; # closed port: the destination answers with RST
    *) lab_fail "protocol must be icmp, udp or tcp" ;;
  esac
}

# Why: the agent under test: $MD_BIN's, or a fresh build of the source tree.
# Sets MD_BIN; returns 1 when there is no agent binary at all.
find_or_build_agent() {
  if [[ -n ${MD_BIN:-} ]]; then
    [[ -x $MD_BIN/agent/mtr-agent ]]
    return
  fi
  local src=${MD_SRC:-$(cd "$HERE/../.." && pwd)} bdir=$LAB_TMP/build type=${BENCH_BUILD_TYPE:-RelWithDebInfo}
  lab_log "building mtr-agent ($type) from $src into $bdir"
  if cmake -S "$src" -B "$bdir" -DCMAKE_BUILD_TYPE="$type" >"$LAB_TMP/build.log" 2>&1 &&
    cmake --build "$bdir" --target mtr-agent md-rusage md-floor -j2 >>"$LAB_TMP/build.log" 2>&1; then
    MD_BIN=$bdir
    return 0
  fi
  tail -n 20 "$LAB_TMP/build.log" >&2
  lab_log "build failed"
  return 1
}

# Why: one measured run of one tool; prints "wall user sys maxrss_kb probes".
# Usage: measure NAME cmd args...   (the command runs in the source namespace)
measure() {
  local name=$1 out=$LAB_TMP/$1.out tf=$LAB_TMP/$1.time
  shift
  lab_exec "$LAB_SRC" "${PIN[@]}" "$RUSAGE" "$tf" "$@" >"$out" 2>"$out.err" || {
    sed 's/^/    /' "$out.err" >&2
    lab_fail "$name failed"
  }
  printf '%s %s\n' "$(tail -n 1 "$tf")" "$(lab_mtr_report_sent "$out")"
}

# Why: the yardstick row: md-floor (tests/bench/md_floor.c) probes with the same pacing and
# does nothing else, so its CPU per 1000 probes is the kernel's own part of paced probing
# here (one timer wakeup, one sendmsg, one read of the reply per probe). ICMP only.
# With BURST = HOPS (the "burst" row) each cycle goes out at once in one sendmmsg, unpaced:
# what pacing costs, and what a prober that gave it up could reach.
# Usage: measure_floor HOPS [BURST]; prints "wall user sys maxrss_kb probes".
measure_floor() {
  local out=$LAB_TMP/floor.out tf=$LAB_TMP/floor.time
  lab_exec "$LAB_SRC" "${PIN[@]}" "$RUSAGE" "$tf" "$MD_BIN/tests/md-floor" "$TARGET" "$1" \
    "$CYCLES" "$INTERVAL" "${2:-1}" >"$out" 2>"$out.err" || {
    sed 's/^/    /' "$out.err" >&2
    lab_fail "md-floor failed"
  }
  printf '%s %s\n' "$(tail -n 1 "$tf")" "$(awk '/^sent/ { print $2 }' "$out.err")"
}

# Why: one table row from measure's figures.
# Usage: row TOOL WALL USER SYS MAXRSS PROBES
row() {
  awk -v t="$1" -v w="$2" -v u="$3" -v s="$4" -v m="$5" -v p="$6" 'BEGIN {
    cpu = (p > 0) ? (u + s) * 1e6 / p : 0
    ucpu = (p > 0) ? u * 1e6 / p : 0
    printf "%-10s %8.2f %8.3f %8.3f %16.2f %17.2f %12d %8d\n", t, w, u, s, cpu, ucpu, m, p }'
}

parse_args "$@"
lab_require root ip mtr jq nft ping
lab_sweep_stale
lab_init
mapfile -t POPTS < <(proto_opts)

HAVE_AGENT=0
if find_or_build_agent && lab_agent_has_trace; then HAVE_AGENT=1; fi
RUSAGE=${MD_BIN:-}/tests/md-rusage
[[ -x $RUSAGE ]] || lab_fail "no $RUSAGE: build the tests (cmake --build BUILD --target md-rusage)"

lab_build_linear
if [[ $FAM == 4 ]]; then TARGET=$LAB_DST4; else TARGET=$LAB_DST6; fi
# Why: in a namespace lab the kernel forwards each probe through every router and builds the
# reply inside the sender's own system call, and bills that to the sender. With two or more
# CPUs, the tools run on CPU 0 and every lab interface hands its received packets to CPU 1
# (RPS), so the emulated network's work is not counted as the tools' own system time.
PIN=()
if (($(nproc) >= 2)); then
  PIN=(taskset -c 0)
  for n in r1 r2 r3 dst src; do
    lab_exec "$n" sh -c 'for q in /sys/class/net/e*/queues/rx-*/rps_cpus; do echo 2 > "$q"; done'
  done
fi
COMMON=(-n "-$FAM" -c "$CYCLES" -i "$INTERVAL" "${POPTS[@]}")

printf '\nbench_trace: %s IPv%s to %s over 4 hops, -c %s -i %s, grace %s s, %s run(s) each\n' \
  "$PROTO" "$FAM" "$TARGET" "$CYCLES" "$INTERVAL" "$GRACE" "$REPEAT"
printf '%-10s %8s %8s %8s %16s %17s %12s %8s\n' tool wall_s user_s sys_s 'cpu_ms/1k_probes' 'user_ms/1k_probes' peak_rss_kb probes
for ((i = 1; i <= REPEAT; i++)); do
  # shellcheck disable=SC2046
  row mtr $(measure mtr mtr --report --report-wide "${COMMON[@]}" -G "$GRACE" "$TARGET")
  if ((HAVE_AGENT)); then
    # shellcheck disable=SC2046
    row mtr-agent $(measure agent "$(lab_agent_bin)" trace "$TARGET" "${COMMON[@]}" --gracetime "$GRACE")
  fi
  if [[ $PROTO == icmp && -x $MD_BIN/tests/md-floor ]]; then
    # shellcheck disable=SC2046
    row floor $(measure_floor 4)
    # shellcheck disable=SC2046
    row burst $(measure_floor 4 4)
  fi
done
((HAVE_AGENT)) || printf 'mtr-agent: missing (no binary with a working "trace" command)\n'
printf '(cpu_ms/1k_probes = (user+sys) ms per 1000 probes, mtr with mtr-packet; tools pinned to CPU 0,\n'
printf ' the lab network'"'"'s packet processing steered to CPU 1 (RPS) when there are 2+ CPUs;\n'
printf ' user_ms/1k_probes is what the tools spend outside the kernel; floor = md-floor, the\n'
printf ' same pacing with nothing else: the kernel'"'"'s part of one paced probe on this machine;\n'
printf ' burst = md-floor sending each cycle at once, unpaced: what only giving up pacing saves)\n'
