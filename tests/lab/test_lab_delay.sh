#!/usr/bin/env bash
# test_lab_delay.sh: latency injection with md-delay (NFQUEUE; this kernel has no netem) on
# the linear lab, checked with ping and mtr, IPv4 and IPv6:
#   - 40 ms on r2's way out to r3 (link 3, "out"): ping to dst rises by ~40 ms, mtr shows
#     hops 1-2 unchanged and hops 3-4 at ~40 ms; only one direction is held (the rule counts
#     the echo requests, not the replies);
#   - 25 ms more on the way back (r2 e3 "in") adds up to ~65 ms;
#   - jitter spreads the RTT inside its bounds; --max-held drops beyond its limit;
#   - removed: back to normal, nothing left running;
#   - md-delay itself: exit 2 on bad arguments and on a queue already bound, no CPU when
#     idle, exit with its parent (PR_SET_PDEATHSIG).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lab_require root ip mtr jq ping
lab_require_delay
lab_sweep_stale

D=40        # ms, the delay under test
D_BACK=25   # ms, on the way back as well
JIT=10      # ms of jitter in the jitter check
CLEAN_MS=5  # a hop not behind the delay stays below this (it is ~0.1 ms)
SLACK_MS=10 # a delayed RTT may exceed its delay by this much (scheduling, ASan builds)
PINGS=20
BIN=$(lab_delay_bin)

# Why: "min avg max mdev received" of one ping run from NODE.
# Usage: ping_stats NODE TARGET COUNT INTERVAL
ping_stats() {
  lab_exec "$1" ping -n -q -c "$3" -i "$4" -W 2 "$2" 2>&1 | awk '
    / received/ { for (i = 1; i <= NF; i++) if ($(i) ~ /^received/) rcv = $(i - 1) }
    /^rtt|^round-trip/ { split($4, a, "/"); mn = a[1]; av = a[2]; mx = a[3]; md = a[4] }
    END { printf "%s %s %s %s %s\n", (mn == "" ? "-" : mn), (av == "" ? "-" : av),
          (mx == "" ? "-" : mx), (md == "" ? "-" : md), rcv + 0 }'
}

# Why: one mtr run; prints "TTL HOST BEST AVG WORST" per hop.
# Usage: mtr_rtts FAMILY TARGET OUTFILE
mtr_rtts() {
  lab_mtr_json "$LAB_SRC" "$3" "$2" -n "-$1" -c "$PINGS" -i 0.1 -G 1 ||
    { sed 's/^/    /' "$3.err" >&2; lab_fail "mtr v$1 failed"; }
  jq -r '.report.hubs[] | "\(.count) \(.host) \(.Best) \(.Avg) \(.Wrst)"' "$3"
}

# Why: the shape every phase checks: mtr per hop and ping to the destination, with hops
# 1..NCLEAN below CLEAN_MS and the rest at EXTRA ms (best >= EXTRA - 0.5, avg <= EXTRA +
# SLACK_MS). Prints the ping average for the report.
# Usage: check_phase WHAT FAMILY EXTRA_MS NCLEAN
check_phase() {
  local what=$1 fam=$2 extra=$3 nclean=$4 target path out ttl host best avg worst p
  if [[ $fam == 4 ]]; then target=$LAB_DST4 path=("${LAB_PATH4[@]}"); else target=$LAB_DST6 path=("${LAB_PATH6[@]}"); fi
  out=$LAB_TMP/$what.v$fam.mtr.json
  while read -r ttl host best avg worst; do
    [[ $host == "${path[ttl - 1]}" ]] || lab_fail "$what v$fam: mtr TTL $ttl is $host, expected ${path[ttl - 1]}"
    lab_log "$what v$fam mtr TTL $ttl $host best $best avg $avg worst $worst ms"
    if ((ttl <= nclean)) || ((extra == 0)); then
      lab_fcmp "$avg" '<' "$CLEAN_MS" || lab_fail "$what v$fam: hop $ttl avg $avg ms, expected < $CLEAN_MS (not delayed)"
    else
      lab_fcmp "$best" '>=' "$(awk -v e="$extra" 'BEGIN { print e - 0.5 }')" ||
        lab_fail "$what v$fam: hop $ttl best $best ms, expected >= $extra ms"
      lab_fcmp "$avg" '<=' $((extra + SLACK_MS)) ||
        lab_fail "$what v$fam: hop $ttl avg $avg ms, expected <= $((extra + SLACK_MS))"
    fi
  done < <(mtr_rtts "$fam" "$target" "$out")
  [[ $(jq '.report.hubs | length' "$out") == "${#path[@]}" ]] || lab_fail "$what v$fam: mtr did not list ${#path[@]} hops"
  read -r -a p <<<"$(ping_stats "$LAB_SRC" "$target" "$PINGS" 0.05)"
  ((p[4] == PINGS)) || lab_fail "$what v$fam: ping got ${p[4]}/$PINGS replies"
  lab_log "$what v$fam ping $target: min/avg/max/mdev ${p[0]}/${p[1]}/${p[2]}/${p[3]} ms"
  if ((extra == 0)); then
    lab_fcmp "${p[1]}" '<' "$CLEAN_MS" || lab_fail "$what v$fam: ping avg ${p[1]} ms, expected < $CLEAN_MS"
  else
    lab_in_range "${p[0]}" "$(awk -v e="$extra" 'BEGIN { print e - 0.5 }')" $((extra + SLACK_MS)) ||
      lab_fail "$what v$fam: ping min ${p[0]} ms, expected about $extra ms"
    lab_fcmp "${p[1]}" '<=' $((extra + SLACK_MS)) || lab_fail "$what v$fam: ping avg ${p[1]} ms > $((extra + SLACK_MS))"
  fi
  RESULT[$what.$fam]=${p[1]}
}

declare -A RESULT=()

# ---- the program alone: arguments
for args in "" "--queue 1" "--delay-ms 5" "--queue 70000 --delay-ms 5" "--queue 1 --delay-ms x" \
  "--queue 1 --delay-ms 5 --max-held 0" "--queue 1 --delay-ms 5 --bogus" "--queue 1 --delay-ms 5 extra"; do
  rc=0
  # shellcheck disable=SC2086 # the arguments are words on purpose
  "$BIN" $args 2>"${TMPDIR:-/tmp}/md-delay-args.$$" || rc=$?
  msg=$(head -n 1 "${TMPDIR:-/tmp}/md-delay-args.$$")
  rm -f "${TMPDIR:-/tmp}/md-delay-args.$$"
  if ((rc != 2)) || [[ $msg != md-delay:* ]]; then
    lab_fail "md-delay $args: exit $rc ('$msg'), expected 2 and a message"
  fi
done
lab_log "ok: bad arguments exit 2 with a message"

lab_init
lab_build_linear

# ---- the program alone: queue in use, idle CPU, parent death
lab_delay r2 3 out "$D"
rc=0
lab_exec r2 timeout 5 "$BIN" --queue 0 --delay-ms 1 2>"$LAB_TMP/busy.err" || rc=$?
if ((rc != 2)) || ! grep -q 'cannot bind NFQUEUE 0' "$LAB_TMP/busy.err"; then
  lab_fail "a second md-delay on a bound queue: exit $rc, expected 2 ($(cat "$LAB_TMP/busy.err"))"
fi
lab_log "ok: a queue already bound exits 2: $(head -n 1 "$LAB_TMP/busy.err")"
pid=${LAB_DELAY_PID[r2:3:out]}
t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
sleep 1
t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
((t1 - t0 <= 1)) || lab_fail "md-delay idle used $((t1 - t0)) clock ticks of CPU in 1 s"
lab_log "ok: idle md-delay used $((t1 - t0)) clock ticks in 1 s"
lab_delay_clear r2 3 out

# The parent (a shell) is SIGKILLed: md-delay must go too.
lab_exec r2 bash -c "\"$BIN\" --queue 7 --delay-ms 1 2>/dev/null & echo \$! >\"$LAB_TMP/orphan.pid\"; sleep 0.3; kill -9 \$\$" || true
opid=$(cat "$LAB_TMP/orphan.pid")
for _ in $(seq 1 40); do kill -0 "$opid" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$opid" 2>/dev/null; then
  kill "$opid"
  lab_fail "md-delay (pid $opid) outlived its parent"
fi
lab_log "ok: md-delay exits when its parent dies"

# ---- before
for fam in 4 6; do check_phase before "$fam" 0 0; done

# ---- 40 ms one link, one direction (r2 -> r3); hops 1 (r1) and 2 (r2) are before it
lab_delay r2 3 out "$D"
for fam in 4 6; do
  check_phase with "$fam" "$D" 2
  # Counts since the rule was added: mtr probes toward hops 3-4 and the pings' echo
  # requests; the replies come back in on e3 and are not counted. A ping alone shows it.
  before=$(lab_delay_packets r2 3 out "$fam")
  if [[ $fam == 4 ]]; then target=$LAB_DST4; else target=$LAB_DST6; fi
  read -r -a p <<<"$(ping_stats "$LAB_SRC" "$target" 10 0.05)"
  n=$(($(lab_delay_packets r2 3 out "$fam") - before))
  # (IPv6 neighbour discovery on e3 may add one or two)
  ((n >= 10 && n <= 12)) || lab_fail "v$fam: 10 pings sent $n packets through the delay, expected 10 (one way)"
  lab_log "ok: v$fam 10 pings, $n packets delayed (requests only)"
done

# ---- and 25 ms on the way back: the two add up
lab_delay r2 3 in "$D_BACK"
for fam in 4 6; do
  if [[ $fam == 4 ]]; then target=$LAB_DST4; else target=$LAB_DST6; fi
  read -r -a p <<<"$(ping_stats "$LAB_SRC" "$target" "$PINGS" 0.05)"
  lab_log "both ways v$fam ping: min/avg/max ${p[0]}/${p[1]}/${p[2]} ms"
  if ! { ((p[4] == PINGS)) && lab_in_range "${p[0]}" $((D + D_BACK - 1)) $((D + D_BACK + SLACK_MS)) &&
    lab_fcmp "${p[1]}" '<=' $((D + D_BACK + SLACK_MS)); }; then
    lab_fail "both ways v$fam: ping ${p[*]}, expected $((D + D_BACK)) ms"
  fi
  RESULT[both.$fam]=${p[1]}
done
lab_delay_clear r2 3 in
lab_delay_clear r2 3 out
((LAB_DELAY_DROPPED == 0)) || lab_fail "the 40 ms delay dropped $LAB_DELAY_DROPPED packets"

# ---- jitter: RTT spread within D-J .. D+J
# Every RTT at least D-J (md-delay never releases a packet early); at least 45 of 50 at most
# D+J+SLACK_MS (a single late one is the VM not scheduling md-delay in time, not the delay
# being wrong: seen once, 68.9 ms); the average near D; a real spread (stdev >= 2 ms).
lab_delay r2 3 out "$D" "$JIT"
read -r -a p <<<"$(lab_exec "$LAB_SRC" ping -n -c 50 -i 0.02 -W 2 "$LAB_DST4" 2>&1 | awk -v hi=$((D + JIT + SLACK_MS)) '
  /time=/ { for (i = 1; i <= NF; i++) if ($(i) ~ /^time=/) { t = substr($(i), 6) + 0
              n++; s += t; ss += t * t; if (n == 1 || t < mn) mn = t; if (t > mx) mx = t
              if (t <= hi) in_hi++ } }
  END { av = n ? s / n : 0; sd = n > 1 ? sqrt((ss - n * av * av) / (n - 1)) : 0
        printf "%.3f %.3f %.3f %.3f %d %d\n", mn, av, mx, sd, n, in_hi }')"
lab_log "jitter ${D}±${JIT} ms v4 ping: min/avg/max/stdev ${p[0]}/${p[1]}/${p[2]}/${p[3]} ms," \
  "${p[5]} of ${p[4]} at most $((D + JIT + SLACK_MS)) ms"
if ! { ((p[4] == 50 && p[5] >= 45)) && lab_fcmp "${p[0]}" '>=' $((D - JIT - 1)) &&
  lab_fcmp "${p[3]}" '>=' 2 && lab_in_range "${p[1]}" $((D - JIT / 2)) $((D + JIT / 2 + 2)); }; then
  lab_fail "jitter: ping ${p[*]}, expected $((D - JIT))..$((D + JIT)) ms spread out"
fi
lab_delay_clear r2 3 out

# ---- --max-held: 200 ms and at most 2 held; pings every 10 ms overflow it
LAB_DELAY_MAX_HELD=2 lab_delay r2 3 out 200
read -r -a p <<<"$(ping_stats "$LAB_SRC" "$LAB_DST4" 20 0.01)"
lab_delay_clear r2 3 out
lab_log "max held 2: ${p[4]}/20 replies, md-delay dropped $LAB_DELAY_DROPPED"
((LAB_DELAY_DROPPED > 0 && p[4] >= 1 && p[4] + LAB_DELAY_DROPPED == 20)) ||
  lab_fail "max held 2: ${p[4]} replies and $LAB_DELAY_DROPPED dropped, expected both > 0 and a sum of 20"

# ---- after: back to normal, nothing left running
for fam in 4 6; do check_phase after "$fam" 0 0; done
for node in "${LAB_NODES[@]}"; do
  [[ -z $(ip netns pids "$(lab_ns "$node")") ]] || lab_fail "processes left in $node: $(ip netns pids "$(lab_ns "$node")")"
  for ipt in iptables ip6tables; do
    rules=$(lab_exec "$node" "$ipt" -w -t mangle -S)
    [[ $rules != *NFQUEUE* ]] || lab_fail "$ipt NFQUEUE rule left in $node"
  done
done

lab_log "RTT to dst (ping avg, ms): v4 before ${RESULT[before.4]} with ${RESULT[with.4]} both-ways ${RESULT[both.4]} after ${RESULT[after.4]}"
lab_log "RTT to dst (ping avg, ms): v6 before ${RESULT[before.6]} with ${RESULT[with.6]} both-ways ${RESULT[both.6]} after ${RESULT[after.6]}"
echo "test_lab_delay: passed"
