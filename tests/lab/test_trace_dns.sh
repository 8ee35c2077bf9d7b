#!/usr/bin/env bash
# test_trace_dns.sh: reverse DNS in the agent.
#  1. With the lab DNS (dnsmasq on r1), the hostnames in `mtr-agent trace --json` are the
#     PTR names of the lab (r1.lab.test ...), for IPv4 and IPv6, as mtr shows them.
#  2. With a dead DNS server (queries silently dropped, each lookup hangs 3 s x 2 tries),
#     `mtr-agent trace -c 5 -i 0.2` must take no longer than the same run with -n plus 1 s,
#     and still print every hop's address. (mtr itself takes ~50 s here: it waits for names.)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lab_require root ip mtr jq nft ping dnsmasq getent
lab_sweep_stale

HAVE_AGENT=0
lab_agent_has_trace && HAVE_AGENT=1

# Why: the expected "TTL NAME" lines of a path under the lab DNS.
name_lines() {
  local i=1 ip
  for ip; do
    echo "$i $(lab_name_of "$ip")"
    i=$((i + 1))
  done
}

# Why: mtr with the lab DNS shows the PTR names: proves the lab DNS before judging the agent.
check_mtr_names() {
  local target=$1 m=$LAB_TMP/mtr.names.json
  shift
  lab_mtr_json "$LAB_SRC" "$m" "$target" -c 2 -i 0.1 -G 0.5
  lab_assert_same_hops "mtr names ($target)" "$(lab_mtr_hops "$m")" "$(name_lines "$@")"
  lab_log "ok: mtr resolves $(jq -r '[.report.hubs[].host] | join(" ")' "$m")"
}

# Why: the agent's JSON carries hostname per host: each must be the PTR name of its ip.
check_agent_names() {
  local target=$1 a=$LAB_TMP/agent.names.json got
  shift
  lab_agent_trace "$LAB_SRC" "$a" "$target" -c 3 -i 0.2 --gracetime 1 --json ||
    lab_fail "mtr-agent trace (names, $target) failed: $(cat "$a.err")"
  got=$(jq -r '.hops[] | .ttl as $t | .hosts[] | "\($t) \(.hostname)"' "$a")
  lab_assert_same_hops "agent hostnames ($target)" "$got" "$(name_lines "$@")"
  lab_log "ok: agent hostnames for $target: $(jq -r '[.hops[].hosts[].hostname] | join(" ")' "$a")"
}

# Why: a dead resolver must not slow the trace down: time the same run with -n and without,
# and check the output still names every hop by address.
# Usage: check_dead_dns TARGET EXPECTED_IP...
check_dead_dns() {
  local target=$1 t0 with_n without_n out=$LAB_TMP/agent.dead.txt ip
  shift
  t0=$(lab_now)
  lab_agent_trace "$LAB_SRC" "$LAB_TMP/agent.nodns.txt" "$target" -n -c 5 -i 0.2 ||
    lab_fail "mtr-agent trace -n ($target) failed: $(cat "$LAB_TMP/agent.nodns.txt.err")"
  with_n=$(lab_elapsed "$t0" "$(lab_now)")
  t0=$(lab_now)
  lab_agent_trace "$LAB_SRC" "$out" "$target" -c 5 -i 0.2 ||
    lab_fail "mtr-agent trace with dead DNS ($target) failed: $(cat "$out.err")"
  without_n=$(lab_elapsed "$t0" "$(lab_now)")
  lab_log "$target: -n ${with_n}s, dead DNS ${without_n}s"
  lab_fcmp "$without_n" '<=' "$(awk -v a="$with_n" 'BEGIN { print a + 1 }')" ||
    lab_fail "dead DNS slowed the trace: ${without_n}s vs ${with_n}s with -n"
  for ip; do
    grep -qE "(^|[^0-9a-f:.])${ip//./\\.}([^0-9a-f:.]|$)" "$out" || {
      cat "$out" >&2
      lab_fail "dead DNS: address $ip missing from the report"
    }
  done
  lab_log "ok: dead DNS costs nothing for $target and the report shows addresses"
}

lab_init
lab_build_linear
lab_dns_start r1 198.18.1.2 "$LAB_SRC"
check_mtr_names "$LAB_DST4" "${LAB_PATH4[@]}"
check_mtr_names "$LAB_DST6" "${LAB_PATH6[@]}"
if ((HAVE_AGENT)); then
  check_agent_names "$LAB_DST4" "${LAB_PATH4[@]}"
  check_agent_names "$LAB_DST6" "${LAB_PATH6[@]}"
fi

# The resolver now points at r3, which drops every DNS query.
lab_dns_dead r3 198.18.3.2 "$LAB_SRC" 3 2
t0=$(lab_now)
if lab_exec "$LAB_SRC" getent hosts "${LAB_PATH4[0]}" >/dev/null; then lab_fail "dead DNS answered"; fi
took=$(lab_elapsed "$t0" "$(lab_now)")
lab_fcmp "$took" '>=' 5 || lab_fail "dead DNS lookup returned after ${took}s: not silently dropped?"
lab_log "ok: a lookup with the dead DNS hangs ${took}s"
if ((HAVE_AGENT)); then
  check_dead_dns "$LAB_DST4" "${LAB_PATH4[@]}"
  check_dead_dns "$LAB_DST6" "${LAB_PATH6[@]}"
fi

((HAVE_AGENT)) || lab_skip "mtr side and lab verified; $(lab_agent_bin) has no working 'trace' yet"
echo "test_trace_dns: passed"
