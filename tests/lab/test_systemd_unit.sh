#!/usr/bin/env bash
# test_systemd_unit.sh: deploy/systemd/mtr-agent.service is hardened, and its system call
# filter lets the agent do all it does.
#
#   rating     `systemd-analyze security --offline=true` on the unit file: "OK" or better
#              (exposure <= 4.9; it is 1.7 with systemd 252), also as --threshold=49
#   directives the ones docs/security.md promises (user, capabilities, sandbox) are there
#   filter     the agent, started as the unit starts it (user nobody standing in for
#              mtr-agent, ambient CAP_NET_RAW, bounding set CAP_NET_RAW, no_new_privs), runs
#              under strace in a lab namespace: ICMP, UDP and TCP traces (forward only, to the
#              far host of the linear lab), a reload, a stop. Every system call it made must be
#              in what the unit allows: @system-service minus @privileged and @resources, plus
#              capset. setuid/setgroups in particular must not appear: the agent is not root
#              under systemd and must not try. (This part needs root, strace and the lab
#              tools; without them it is left out with a note, and the rest still counts.)
# Exit 77 (skipped) only when systemd-analyze is absent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SRC=${MD_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
UNIT=$SRC/deploy/systemd/mtr-agent.service
command -v systemd-analyze >/dev/null 2>&1 || lab_skip "no systemd-analyze (Debian: apt-get install -y systemd)"
[[ -f $UNIT ]] || lab_fail "no unit file $UNIT"

# ---- the rating
out=$(systemd-analyze security --no-pager --offline=true "$UNIT" 2>&1) || lab_fail "systemd-analyze failed: $out"
line=$(grep -E 'Overall exposure level for mtr-agent.service:' <<<"$out") ||
  lab_fail "no overall exposure line in: $(tail -5 <<<"$out")"
lab_log "$line"
read -r level label < <(sed -E 's/.*: ([0-9.]+) ([A-Z]+).*/\1 \2/' <<<"$line")
[[ $label == OK || $label == SAFE ]] || lab_fail "rating $label ($level), want OK or better"
lab_fcmp "$level" '<=' 4.9 || lab_fail "exposure $level is over 4.9"
systemd-analyze security --no-pager --offline=true --threshold=49 "$UNIT" >/dev/null 2>&1 ||
  lab_fail "systemd-analyze --threshold=49 refuses the unit"

# ---- the directives the security model relies on
# shellcheck disable=SC2016 # $MAINPID is systemd's, literally in the file
for d in 'User=mtr-agent' 'DynamicUser=no' 'AmbientCapabilities=CAP_NET_RAW' \
  'CapabilityBoundingSet=CAP_NET_RAW' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
  'ProtectHome=yes' 'PrivateTmp=yes' 'PrivateDevices=yes' 'ProtectKernelTunables=yes' \
  'ProtectKernelModules=yes' 'ProtectKernelLogs=yes' 'ProtectControlGroups=yes' \
  'ProtectClock=yes' 'ProtectHostname=yes' \
  'RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_UNIX' 'RestrictNamespaces=yes' \
  'LockPersonality=yes' 'MemoryDenyWriteExecute=yes' 'RestrictRealtime=yes' \
  'RestrictSUIDSGID=yes' 'SystemCallFilter=@system-service' \
  'SystemCallFilter=~@privileged @resources' 'SystemCallFilter=capset' \
  'SystemCallArchitectures=native' 'MemoryMax=64M' 'ExecReload=/bin/kill -HUP $MAINPID' \
  'Restart=on-failure' 'UMask=0077'; do
  grep -qxF "$d" "$UNIT" || lab_fail "the unit lacks '$d'"
done
lab_log "every promised directive is in the unit"

# ---- the filter against what the agent really calls
# Why: the system calls of a systemd group, nested groups expanded.
expand() {
  local line
  systemd-analyze syscall-filter --no-pager "$1" | tail -n +2 | while read -r line; do
    [[ -z $line || $line == \#* ]] && continue
    if [[ $line == @* ]]; then expand "$line"; else printf '%s\n' "$line"; fi
  done
}

why_not=""
[[ $(id -u) -eq 0 ]] || why_not="not root"
for t in strace ip setpriv jq; do command -v "$t" >/dev/null 2>&1 || why_not="${why_not:+$why_not, }no $t"; done
[[ -x ${MD_BIN:-}/agent/mtr-agent && -x ${MD_BIN:-}/controller/mtrctl ]] || why_not="${why_not:+$why_not, }no binaries in MD_BIN"
id nobody >/dev/null 2>&1 || why_not="${why_not:+$why_not, }no user nobody"
if [[ -n $why_not ]]; then
  lab_log "system call check left out ($why_not); the rating and directives passed"
  exit 0
fi

lab_sweep_stale
lab_init
lab_build_linear
expand @system-service | sort -u >"$LAB_TMP/allowed.all"
{ expand @privileged; expand @resources; } | sort -u >"$LAB_TMP/denied"
{ comm -23 "$LAB_TMP/allowed.all" "$LAB_TMP/denied"; echo capset; } | sort -u >"$LAB_TMP/allowed"
lab_log "the unit allows $(wc -l <"$LAB_TMP/allowed") system calls"

CTL=$MD_BIN/controller/mtrctl
chmod 0711 "$LAB_TMP"
ETC=$LAB_TMP/etc
mkdir -m 0750 "$ETC"
chgrp "$(id -g nobody)" "$ETC"
"$CTL" pki init --dir "$LAB_TMP/pki" >/dev/null
"$CTL" pki issue --dir "$LAB_TMP/pki" --name src --role agent --san "$LAB_SRC4" >/dev/null
"$CTL" pki issue --dir "$LAB_TMP/pki" --name ops --role controller >/dev/null
for f in ca.crt src.crt src.key; do install -m 0640 -o root -g "$(id -g nobody)" "$LAB_TMP/pki/$f" "$ETC/$f"; done
cat >"$ETC/src.yaml" <<EOT
name: src
listen: ["$LAB_SRC4:7447"]
tls: { cert: $ETC/src.crt, key: $ETC/src.key, ca: $ETC/ca.crt, allowed_controllers: [ops] }
policy: { allow_targets: ["198.18.0.0/15"], min_interval: 0.01, max_probes_per_second: 2000 }
EOT
chgrp "$(id -g nobody)" "$ETC/src.yaml"
chmod 0640 "$ETC/src.yaml"
LAB_CTL_CONFIG=$LAB_TMP/mtrctl.yaml
cat >"$LAB_CTL_CONFIG" <<EOT
tls: { cert: $LAB_TMP/pki/ops.crt, key: $LAB_TMP/pki/ops.key, ca: $LAB_TMP/pki/ca.crt }
history: $LAB_TMP/history.db
agents:
  src: { address: "$LAB_SRC4:7447" }
EOT
LAB_A=$LAB_SRC # lab_mtrctl runs the controller on node $LAB_A

# strace outermost, so setpriv's own setresuid/capset are traced too but come before the
# agent's execve, after which counting starts.
ST=$LAB_TMP/strace
# (LeakSanitizer cannot work under ptrace: an ASan build runs without it here.)
lab_bg "$LAB_SRC" "$LAB_TMP/agent.out" "$LAB_TMP/agent.err" \
  env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -o "$ST" \
  setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups \
  --inh-caps=+net_raw --ambient-caps=+net_raw --bounding-set=-all,+net_raw --no-new-privs \
  "$MD_BIN/agent/mtr-agent" --config "$ETC/src.yaml"
STRACE_PID=$LAB_LAST_PID
for ((i = 0; i < 200; i++)); do
  grep -q 'no_new_privs' "$LAB_TMP/agent.err" 2>/dev/null && break
  kill -0 "$STRACE_PID" 2>/dev/null || lab_fail "agent exited: $(cat "$LAB_TMP/agent.err")"
  sleep 0.05
done
grep -q 'raw sockets: icmp, udp, tcp' "$LAB_TMP/agent.err" || lab_fail "agent: $(cat "$LAB_TMP/agent.err")"
AGENT_PID=$(pgrep -P "$STRACE_PID" -x mtr-agent) || lab_fail "no agent under strace"
for proto in icmp udp tcp; do
  lab_mtrctl "$LAB_TMP/d-$proto" diagnose src "$LAB_DST4" -c 3 -i 0.05 --protocol "$proto" --format json
  jq -e '.forward.reached' "$LAB_TMP/d-$proto.out" >/dev/null ||
    lab_fail "$proto trace under strace: exit $RC: $(cat "$LAB_TMP/d-$proto.err")"
done
kill -HUP "$AGENT_PID"
for ((i = 0; i < 100; i++)); do
  grep -q 'configuration reloaded' "$LAB_TMP/agent.err" && break
  sleep 0.05
done
grep -q 'configuration reloaded' "$LAB_TMP/agent.err" || lab_fail "no reload: $(cat "$LAB_TMP/agent.err")"
kill -TERM "$AGENT_PID"
RC=0
wait "$STRACE_PID" || RC=$?
((RC == 0)) || lab_fail "agent exit $RC: $(tail -5 "$LAB_TMP/agent.err")"

# Every call after the agent's execve, by name.
awk -v bin="$MD_BIN/agent/mtr-agent" '
  !on && index($0, "execve(\"" bin "\"") && / = 0$/ { on = 1; next }
  on && match($0, /^[0-9]+ +[a-z0-9_]+\(/) { s = substr($0, RSTART, RLENGTH - 1); sub(/^[0-9]+ +/, "", s); print s }
' "$ST" | sort -u >"$LAB_TMP/used"
(($(wc -l <"$LAB_TMP/used") > 20)) || lab_fail "strace saw too few calls: $(cat "$LAB_TMP/used")"
bad=$(comm -23 "$LAB_TMP/used" "$LAB_TMP/allowed" | xargs)
[[ -z $bad ]] || lab_fail "the unit's SystemCallFilter would refuse: $bad"
for s in setuid setresuid setgroups setgid setresgid; do
  grep -qx "$s" "$LAB_TMP/used" && lab_fail "the agent called $s although it was not root"
done
grep -qx capset "$LAB_TMP/used" || lab_fail "the agent never called capset"
lab_log "the agent made $(wc -l <"$LAB_TMP/used") distinct system calls, all allowed by the unit" \
  "(capset among them; no setuid/setgroups)"
lab_log "PASS"
