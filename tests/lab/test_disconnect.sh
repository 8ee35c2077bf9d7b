#!/usr/bin/env bash
# test_disconnect.sh: when the controller goes away mid-run (killed: its connections close),
# the agents stop probing within one second. Asserted on the packets seen in the lab: an
# nftables counter on r1 counts what agent "local" (a) sends into the network (probes and
# one-way stream packets); one second after the controller dies the counter must stand still.
# Also: Ctrl-C (SIGINT) on `mtrctl diagnose` ends both runs, still prints the report, stores it
# as incomplete, and exits 3.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lab_require root ip jq nft
lab_sweep_stale
[[ -x $MD_BIN/controller/mtrctl && -x $MD_BIN/agent/mtr-agent ]] || lab_skip "no mtrctl / mtr-agent in $MD_BIN"

lab_init
lab_build_diamond asym
lab_agents_up 4
lab_exec r1 nft add table inet mdl_count
lab_exec r1 nft add chain inet mdl_count cnt '{ type filter hook prerouting priority -300; }'
# probes (ICMP) and one-way stream packets (UDP) from a; the TLS control traffic is TCP
lab_exec r1 nft add rule inet mdl_count cnt iifname '"e1"' ip saddr 198.18.1.1 ip protocol '{ icmp, udp }' counter

count() { lab_exec r1 nft list chain inet mdl_count cnt | awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }' | head -1; }

# ---- the controller killed mid-run
CTL=("$MD_BIN/controller/mtrctl" --config "$LAB_CTL_CONFIG")
lab_exec "$LAB_A" "${CTL[@]}" diagnose local cvm -c 200 -i 0.05 --format json >/dev/null 2>&1 &
DPID=$!
sleep 2
c0=$(count)
((c0 > 20)) || lab_fail "the run did not start probing ($c0 packets seen)"
pkill -9 -f "mtrctl --config $LAB_CTL_CONFIG diagnose" || true
wait "$DPID" 2>/dev/null || true
sleep 1
c1=$(count)
sleep 2
c2=$(count)
lab_log "packets from a seen at r1: $c0 while running, $c1 one second after the controller died, $c2 two seconds later"
((c2 == c1)) || lab_fail "agent 'local' kept probing after the controller was gone: $c1 -> $c2 packets"
grep -qE "cancel|closed|disconnect" "$LAB_TMP/agent-local.err" || lab_fail "agent log does not mention the end of the session"

# ---- Ctrl-C: both runs end, the report is printed and stored as incomplete, exit 3
RC=0
lab_exec "$LAB_A" "${CTL[@]}" diagnose local cvm -c 200 -i 0.05 --format json >"$LAB_TMP/int.json" 2>"$LAB_TMP/int.err" &
DPID=$!
sleep 2
pkill -INT -f "mtrctl --config $LAB_CTL_CONFIG diagnose" || true
wait "$DPID" || RC=$?
((RC == 3)) || lab_fail "Ctrl-C: exit $RC, expected 3 ($(cat "$LAB_TMP/int.err"))"
jq -e '.diagnosis.status == "incomplete" and any(.errors[]; .code == "interrupted") and
       (.forward.hops | length) > 0' "$LAB_TMP/int.json" >/dev/null ||
  lab_fail "Ctrl-C: the report is not the partial one: $(jq -c '{d: .diagnosis.status, e: .errors}' "$LAB_TMP/int.json")"
lab_exec "$LAB_A" "${CTL[@]}" history --limit 1 >"$LAB_TMP/h.out"
grep -q incomplete "$LAB_TMP/h.out" || lab_fail "Ctrl-C: not stored as incomplete: $(cat "$LAB_TMP/h.out")"
sleep 1
c3=$(count)
sleep 1
c4=$(count)
((c4 == c3)) || lab_fail "probing went on after Ctrl-C: $c3 -> $c4"
lab_log "ok: Ctrl-C ends both runs, prints the partial report (exit 3) and stores it as incomplete"
lab_log "PASS"
