#!/usr/bin/env bash
# test_lab_topology.sh: checks the lab itself, with mtr and ping only (no agent), so that a
# failing agent test can be trusted to be about the agent. Covers every builder and fault
# of lib.sh: linear paths, ECMP spreading, asymmetric forward/reverse paths, link loss,
# ICMP rate limiting, a destination dropping echo requests, lab DNS, dead DNS, cleanup.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lab_require root ip mtr jq nft ping dnsmasq getent
lab_sweep_stale

MTR_FAST=(-n -c 5 -i 0.1 -G 0.5)

# Why: mtr's responders per TTL must equal an expected path (v4 or v6) from NODE.
check_path() {
  local node=$1 target=$2 what=$3
  shift 3
  lab_mtr_report "$node" "$LAB_TMP/r" "$target" "${MTR_FAST[@]}"
  lab_assert_same_hops "$what" "$(lab_mtr_report_hosts "$LAB_TMP/r")" "$(lab_path_lines "$@")"
  lab_log "ok: $what"
}

# Why: the ECMP TTL must show both parallel routers with mtr's varying-port UDP probes.
check_ecmp_spread() {
  local target=$1 fam=$2
  shift 2
  lab_mtr_report src "$LAB_TMP/r" "$target" -u -n -c 20 -i 0.05 -G 0.5
  local got
  got=$(lab_mtr_report_hosts "$LAB_TMP/r" | awk -v t="$LAB_ECMP_TTL" '$1 == t')
  lab_assert_same_hops "ecmp v$fam responders at TTL $LAB_ECMP_TTL" "$got" \
    "$(printf "$LAB_ECMP_TTL %s\n" "$@")"
  lab_log "ok: ecmp v$fam spreads over $*"
}

lab_init

# --- linear lab, clean, then with each fault
lab_build_linear
check_path src "$LAB_DST4" "linear v4" "${LAB_PATH4[@]}"
check_path src "$LAB_DST6" "linear v6" "${LAB_PATH6[@]}"

lab_loss r2 3 out 30
lab_mtr_json src "$LAB_TMP/l.json" "$LAB_DST4" -n -c 100 -i 0.02 -G 0.5
for ttl in 1 2; do
  loss=$(lab_mtr_loss "$LAB_TMP/l.json" "$ttl")
  lab_fcmp "$loss" '<=' 3 || lab_fail "loss before the lossy link at TTL $ttl: $loss%"
done
for ttl in 3 4; do
  loss=$(lab_mtr_loss "$LAB_TMP/l.json" "$ttl")
  lab_in_range "$loss" 12 48 || lab_fail "loss beyond the lossy link at TTL $ttl: $loss%"
done
lab_log "ok: 30% loss on r2->r3 shows from TTL 3 on ($(lab_mtr_loss "$LAB_TMP/l.json" 4)% at dst)"
lab_fault_clear r2

lab_icmp_ratelimit r2 1000
lab_mtr_json src "$LAB_TMP/rl.json" "$LAB_DST6" -n -c 30 -i 0.05 -G 0.5
loss=$(lab_mtr_loss "$LAB_TMP/rl.json" 2)
lab_fcmp "$loss" '>=' 50 || lab_fail "rate-limited r2 lost only $loss% of its answers"
lab_fcmp "$(lab_mtr_loss "$LAB_TMP/rl.json" 4)" '==' 0 || lab_fail "rate limiting at r2 affected the destination"
lab_log "ok: ICMP rate limiting on r2 ($loss% unanswered at TTL 2, 0% at dst)"
lab_fault_clear r2

lab_drop_echo dst 50
lab_mtr_json src "$LAB_TMP/de.json" "$LAB_DST4" -n -c 60 -i 0.02 -G 0.5
loss=$(lab_mtr_loss "$LAB_TMP/de.json" 4)
lab_in_range "$loss" 25 75 || lab_fail "dst dropping 50% of echo requests: $loss%"
lab_fcmp "$(lab_mtr_loss "$LAB_TMP/de.json" 3)" '==' 0 || lab_fail "echo drop at dst affected TTL 3"
lab_log "ok: destination drops echo requests ($loss%)"
lab_fault_clear dst

# --- DNS: names from the lab server, then a server that never answers
lab_dns_start r1 198.18.1.2 src
lab_mtr_json src "$LAB_TMP/d.json" "$LAB_DST6" -c 2 -i 0.1 -G 0.5
got=$(jq -r '.report.hubs[] | "\(.count) \(.host)"' "$LAB_TMP/d.json")
want=$(for i in "${!LAB_PATH6[@]}"; do echo "$((i + 1)) $(lab_name_of "${LAB_PATH6[i]}")"; done)
lab_assert_same_hops "mtr names from lab DNS" "$got" "$want"
lab_log "ok: lab DNS names: $(jq -r '[.report.hubs[].host] | join(" ")' "$LAB_TMP/d.json")"
lab_dns_dead r3 198.18.3.2 src 1 2
t0=$(lab_now)
if lab_exec src getent hosts 198.18.2.2 >/dev/null; then lab_fail "dead DNS answered"; fi
took=$(lab_elapsed "$t0" "$(lab_now)")
lab_fcmp "$took" '>=' 1.8 || lab_fail "dead DNS failed fast ($took s): queries are not silently dropped"
lab_log "ok: dead DNS lookup hangs ${took}s then fails"
lab_cleanup

# --- ECMP lab
lab_init
lab_build_diamond ecmp
check_ecmp_spread "$LAB_DST4" 4 "${LAB_ECMP4[@]}"
check_ecmp_spread "$LAB_DST6" 6 "${LAB_ECMP6[@]}"
lab_cleanup

# --- asymmetric lab: each direction over its own middle router
lab_init
lab_build_diamond asym
check_path "$LAB_A" "$LAB_B4" "asym a->b v4" "${LAB_FWD4[@]}"
check_path "$LAB_B" "$LAB_A4" "asym b->a v4" "${LAB_REV4[@]}"
check_path "$LAB_A" "$LAB_B6" "asym a->b v6" "${LAB_FWD6[@]}"
check_path "$LAB_B" "$LAB_A6" "asym b->a v6" "${LAB_REV6[@]}"
id=$LAB_ID
lab_cleanup

# --- nothing left behind
if ip netns list | grep -q "^$id-"; then lab_fail "namespaces of $id left behind"; fi
if compgen -G "/etc/netns/$id-*" >/dev/null; then lab_fail "/etc/netns dirs of $id left behind"; fi
lab_log "ok: cleanup left nothing"
echo "test_lab_topology: passed"
