#!/usr/bin/env bash
# test_privdrop.sh: the agent gives up root and every capability once its raw sockets and
# listeners are open, still traces with every protocol, and reloads on SIGHUP as the
# unprivileged user. On the asymmetric lab (a -> b over r2f, b -> a over r2r), certificates
# from `mtrctl pki`, the TLS and config files root:nogroup 0640 as docs/security.md says:
#
#   local (a)  started as root with --user nobody: Uid nobody, CapEff/CapPrm/CapAmb 0,
#              bounding set empty, NoNewPrivs 1, groups only nogroup
#   cvm (b)    started the way systemd starts the unit (setpriv: user nobody, ambient
#              CAP_NET_RAW, bounding set CAP_NET_RAW, no_new_privs): it never calls setuid,
#              and CapEff/CapPrm/CapAmb are 0 afterwards
#   traces     `mtrctl diagnose local cvm` ICMP, UDP, TCP over IPv4 and ICMP, UDP over IPv6:
#              both directions reach, hops as the lab says (raw sockets opened before the drop)
#   SIGHUP     a run in flight across a reload that removes a's address from cvm's
#              allow_targets completes; the next diagnosis is refused by cvm's new policy; a
#              broken config and an unreadable key are logged and change nothing; the agent
#              keeps its pid throughout
#   default    started as root without --user: runs as "mtr-agent" when that user exists,
#              else stays root with a warning, in both cases with no capabilities
#   errors     --user of an unknown user, and a non-root agent asked to become another
#              user: exit 2, nothing listens
#   trace      `mtr-agent trace` run as root: while it probes (UDP, raw sockets) it is still
#              uid 0 but CapEff/CapPrm 0 and NoNewPrivs 1, and its report reaches b
#   stop       SIGTERM after all that: exit 0, "stopped"
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lab_require root ip jq setpriv
lab_sweep_stale
[[ -x $MD_BIN/controller/mtrctl && -x $MD_BIN/agent/mtr-agent ]] || lab_skip "no mtrctl / mtr-agent in $MD_BIN"
id nobody >/dev/null 2>&1 || lab_skip "no user nobody"
grep -q NoNewPrivs /proc/self/status || lab_skip "kernel without no_new_privs in /proc status"

AGENT=$MD_BIN/agent/mtr-agent
CTL=$MD_BIN/controller/mtrctl
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
declare -A PID=()

# Why: one field of a process's /proc status (the first value after the key).
pfield() { awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/status"; }
# Why: all four uids (real, effective, saved, fs) in one string.
puids() { awk '$1 == "Uid:" { print $2, $3, $4, $5; exit }' "/proc/$1/status"; }

# Why: the agent's configuration, allow_targets given; root:nogroup 0640 like production.
# Usage: write_cfg NAME LISTEN ALLOW_TARGETS_BODY
write_cfg() {
  local name=$1 listen=$2 allow=$3 f=$ETC/$1.yaml
  cat >"$f.tmp" <<EOT
name: $name
listen: ["$listen"]
tls: { cert: $ETC/$name.crt, key: $ETC/$name.key, ca: $ETC/ca.crt, allowed_controllers: [ops] }
policy:
  allow_targets: [$allow]
  max_probes_per_second: 2000
  min_interval: 0.01
EOT
  chgrp "$NOBODY_GID" "$f.tmp"
  chmod 0640 "$f.tmp"
  mv "$f.tmp" "$f"
}

# Why: wait until the agent logged its privilege drop (or died); fail with its log otherwise.
wait_dropped() {
  local name=$1 log=$LAB_TMP/agent-$1.err i
  for ((i = 0; i < 200; i++)); do
    grep -qE 'no_new_privs|running as root' "$log" 2>/dev/null && return 0
    kill -0 "${PID[$name]}" 2>/dev/null || lab_fail "agent $name exited: $(cat "$log")"
    sleep 0.05
  done
  lab_fail "agent $name never dropped privileges: $(cat "$log")"
}

# Why: start an agent as root (MODE root) or as systemd would start the unit (MODE systemd).
# Usage: start_agent NODE NAME MODE [agent options...]
start_agent() {
  local node=$1 name=$2 mode=$3
  shift 3
  local pre=()
  # shellcheck disable=SC2054 # setpriv's own comma lists
  [[ $mode == systemd ]] && pre=(setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups
    --inh-caps=+net_raw --ambient-caps=+net_raw --bounding-set=-all,+net_raw --no-new-privs)
  lab_bg "$node" "$LAB_TMP/agent-$name.out" "$LAB_TMP/agent-$name.err" \
    "${pre[@]}" "$AGENT" --config "$ETC/$name.yaml" "$@"
  PID[$name]=$LAB_LAST_PID
  wait_dropped "$name"
}

# Why: the assertions of the issue on one running agent.
# Usage: check_dropped NAME UID BOUNDING(empty|any)
check_dropped() {
  local name=$1 uid=$2 bnd=$3 pid=${PID[$1]} f
  [[ $(puids "$pid") == "$uid $uid $uid $uid" ]] || lab_fail "$name: Uid $(puids "$pid"), want $uid"
  for f in CapEff CapPrm CapAmb CapInh; do
    [[ $(pfield "$pid" $f) == 0000000000000000 ]] || lab_fail "$name: $f $(pfield "$pid" $f), want 0"
  done
  [[ $(pfield "$pid" NoNewPrivs) == 1 ]] || lab_fail "$name: NoNewPrivs $(pfield "$pid" NoNewPrivs)"
  if [[ $bnd == empty ]]; then
    [[ $(pfield "$pid" CapBnd) == 0000000000000000 ]] || lab_fail "$name: CapBnd $(pfield "$pid" CapBnd)"
  fi
  lab_log "$name: Uid $(puids "$pid"), CapEff $(pfield "$pid" CapEff), CapPrm $(pfield "$pid" CapPrm)," \
    "CapBnd $(pfield "$pid" CapBnd), NoNewPrivs 1"
}

# Why: one diagnosis as JSON; sets RC and J. Usage: diag NAME ARGS...
diag() {
  local name=$1
  shift
  lab_mtrctl "$LAB_TMP/$name" diagnose "$@" --format json
  J=$LAB_TMP/$name.out
  jq -e .schema "$J" >/dev/null 2>&1 || lab_fail "$name: no JSON report (exit $RC): $(cat "$LAB_TMP/$name.err")"
}

# Why: assert a jq expression over the last report, with the report's gist on failure.
check() {
  local what=$1 expr=$2
  jq -e "$expr" "$J" >/dev/null || {
    jq -c '{status: .diagnosis.status, fwd: [.forward.hops[]?.hosts[0].ip], rev: [.reverse.hops[]?.hosts[0].ip],
            errors: .errors}' "$J" >&2
    lab_fail "$what: expected $expr"
  }
}

# Why: both paths traced through the raw sockets opened before the drop.
# Usage: traced NAME FWD_JSON REV_JSON ARGS...
traced() {
  local name=$1 fwd=$2 rev=$3
  shift 3
  diag "$name" "$@"
  check "$name" '(.errors | length) == 0 and .forward.reached and .reverse.reached'
  check "$name" "[.forward.hops[].hosts[0].ip] == $fwd and [.reverse.hops[].hosts[0].ip] == $rev"
  lab_log "$name: exit $RC, both directions reached"
}

# Why: wait for a line in an agent's log, counted from a given line number.
# Usage: wait_log NAME FROM_LINE REGEX
wait_log() {
  local log=$LAB_TMP/agent-$1.err i
  for ((i = 0; i < 100; i++)); do
    tail -n +"$(($2 + 1))" "$log" | grep -qE "$3" && return 0
    sleep 0.05
  done
  lab_fail "agent $1: no log line like '$3': $(tail -n +"$(($2 + 1))" "$log")"
}

lines() { wc -l <"$LAB_TMP/agent-$1.err"; }

# Why: SIGHUP and wait for its outcome line. Usage: hup NAME REGEX
hup() {
  local n
  n=$(lines "$1")
  kill -HUP "${PID[$1]}"
  wait_log "$1" "$n" "$2"
  kill -0 "${PID[$1]}" || lab_fail "agent $1 died on SIGHUP"
}

lab_init
lab_build_diamond asym

# ---- PKI and configuration readable by the service user only through its group
chmod 0711 "$LAB_TMP"
ETC=$LAB_TMP/etc
mkdir -m 0750 "$ETC"
chgrp "$NOBODY_GID" "$ETC"
"$CTL" pki init --dir "$LAB_TMP/pki" >/dev/null
"$CTL" pki issue --dir "$LAB_TMP/pki" --name local --role agent --san "$LAB_A4" --san "$LAB_A6" >/dev/null
"$CTL" pki issue --dir "$LAB_TMP/pki" --name cvm --role agent --san "$LAB_B4" --san "$LAB_B6" >/dev/null
"$CTL" pki issue --dir "$LAB_TMP/pki" --name ops --role controller >/dev/null
for f in ca.crt local.crt local.key cvm.crt cvm.key; do
  install -m 0640 -o root -g "$NOBODY_GID" "$LAB_TMP/pki/$f" "$ETC/$f"
done
ALL='"198.18.0.0/15", "2001:db8::/32"'
write_cfg local "$LAB_A4:7447" "$ALL"
write_cfg cvm "$LAB_B4:7447" "$ALL"
LAB_CTL_CONFIG=$LAB_TMP/mtrctl.yaml
cat >"$LAB_CTL_CONFIG" <<EOT
tls: { cert: $LAB_TMP/pki/ops.crt, key: $LAB_TMP/pki/ops.key, ca: $LAB_TMP/pki/ca.crt }
history: $LAB_TMP/history.db
agents:
  local:  { address: "$LAB_A4:7447" }
  cvm:    { address: "$LAB_B4:7447" }
  local6: { address: "$LAB_A4:7447", probe_address: "$LAB_A6", tls_name: local }
  cvm6:   { address: "$LAB_B4:7447", probe_address: "$LAB_B6", tls_name: cvm }
defaults: { protocol: icmp, cycles: 10, interval: 1.0 }
EOT

# ---- errors before anything listens
RC=0
lab_exec "$LAB_A" "$AGENT" --config "$ETC/local.yaml" --user no-such-user-md >/dev/null 2>"$LAB_TMP/e1" || RC=$?
if ((RC != 2)) || ! grep -q "user 'no-such-user-md' does not exist" "$LAB_TMP/e1"; then
  lab_fail "unknown user: exit $RC: $(cat "$LAB_TMP/e1")"
fi
RC=0
lab_exec "$LAB_A" setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
  "$AGENT" --config "$ETC/local.yaml" --user root >/dev/null 2>"$LAB_TMP/e2" || RC=$?
if ((RC != 2)) || ! grep -q "not as root" "$LAB_TMP/e2"; then
  lab_fail "non-root --user root: exit $RC: $(cat "$LAB_TMP/e2")"
fi
lab_exec "$LAB_A" "$AGENT" --config "$ETC/local.yaml" --user nobody --check-config | grep -q "runs as user 'nobody'" ||
  lab_fail "--check-config does not say who the agent runs as"
lab_log "unknown user and non-root --user: exit 2"

# ---- the two agents
start_agent "$LAB_A" local root --user nobody
start_agent "$LAB_B" cvm systemd --verbose
grep -q "raw sockets: icmp, udp, tcp" "$LAB_TMP/agent-local.err" || lab_fail "local: no raw sockets"
grep -q "raw sockets: icmp, udp, tcp" "$LAB_TMP/agent-cvm.err" || lab_fail "cvm: no raw sockets"
check_dropped local "$NOBODY_UID" empty
check_dropped cvm "$NOBODY_UID" any
[[ $(awk '$1 == "Groups:" { $1 = ""; print }' "/proc/${PID[local]}/status" | xargs) == "$NOBODY_GID" ]] ||
  lab_fail "local: supplementary groups $(awk '$1 == "Groups:"' "/proc/${PID[local]}/status")"
grep -q "privileges dropped: running as user 'nobody'" "$LAB_TMP/agent-cvm.err" ||
  lab_fail "cvm: no drop line: $(cat "$LAB_TMP/agent-cvm.err")"

# ---- every protocol, both directions, after the drop
FWD4=$(printf '%s\n' "${LAB_FWD4[@]}" | jq -R . | jq -sc .)
REV4=$(printf '%s\n' "${LAB_REV4[@]}" | jq -R . | jq -sc .)
FWD6=$(printf '%s\n' "${LAB_FWD6[@]}" | jq -R . | jq -sc .)
REV6=$(printf '%s\n' "${LAB_REV6[@]}" | jq -R . | jq -sc .)
FAST=(-c 5 -i 0.05 -n)
traced icmp4 "$FWD4" "$REV4" local cvm "${FAST[@]}"
traced udp4 "$FWD4" "$REV4" local cvm "${FAST[@]}" --protocol udp
traced tcp4 "$FWD4" "$REV4" local cvm "${FAST[@]}" --protocol tcp
traced icmp6 "$FWD6" "$REV6" local6 cvm6 "${FAST[@]}" -6
traced udp6 "$FWD6" "$REV6" local6 cvm6 "${FAST[@]}" -6 --protocol udp
traced tcp6 "$FWD6" "$REV6" local6 cvm6 "${FAST[@]}" -6 --protocol tcp
check_dropped local "$NOBODY_UID" empty # still nothing gained
check_dropped cvm "$NOBODY_UID" any

# ---- SIGHUP as nobody: a run in flight across a policy change
RC=0
lab_exec "$LAB_A" "$CTL" --config "$LAB_CTL_CONFIG" diagnose local cvm -c 30 -i 0.1 -n --format json \
  >"$LAB_TMP/inflight.out" 2>"$LAB_TMP/inflight.err" &
DPID=$!
n=$(lines cvm)
wait_log cvm "$n" "run .* for ops@.*: accepted" # --verbose logs the acceptance
sleep 0.8                                          # past its scheduled start: probing
# cvm's run is in flight now (3 s long); change its policy under it
write_cfg cvm "$LAB_B4:7447" '"198.19.0.0/16"'
hup cvm "configuration reloaded from .* 1 runs in flight go on|reload failed"
grep -q "reload failed" "$LAB_TMP/agent-cvm.err" && lab_fail "cvm reload failed: $(cat "$LAB_TMP/agent-cvm.err")"
wait "$DPID" || RC=$?
J=$LAB_TMP/inflight.out
jq -e .schema "$J" >/dev/null 2>&1 || lab_fail "in-flight diagnosis: no report (exit $RC): $(cat "$LAB_TMP/inflight.err")"
check inflight '(.errors | length) == 0 and .forward.complete and .reverse.complete and .reverse.reached'
check inflight '[.reverse.hops[] | select(.hosts | length > 0)][-1].sent == 30'
lab_log "run in flight across the reload: complete, 30 cycles"
# the next one meets the new policy on cvm (a's address is no longer allowed)
diag refused local cvm "${FAST[@]}"
((RC == 2)) || lab_fail "refused: exit $RC, want 2 (a policy refusal)"
check refused '[.errors[] | select(.agent == "cvm" and (.message | test("not in policy.allow_targets \\[198.19.0.0/16\\]")))] | length == 1'
lab_log "after the reload cvm refuses a's address (exit 3, POLICY_DENIED)"

# ---- reload errors keep the running configuration
printf 'name: cvm\nlisten: [\n' >"$ETC/cvm.yaml"
hup cvm "reload failed, the running configuration stays: .*cvm.yaml:"
write_cfg cvm "$LAB_B4:7447" "$ALL"
chmod 0600 "$ETC/cvm.key"
hup cvm "reload failed, the running configuration stays: .*Permission denied.*no longer runs as root"
diag still_refused local cvm "${FAST[@]}"
((RC == 2)) || lab_fail "after failed reloads: exit $RC, want 2 (the policy from before stays and refuses)"
chmod 0640 "$ETC/cvm.key"
hup cvm "configuration reloaded from"
traced again4 "$FWD4" "$REV4" local cvm "${FAST[@]}" --protocol udp
lab_log "broken config, unreadable key: logged, old policy kept; then a good reload"

# ---- default user: root without --user
RC=0
write_cfg r1 "198.18.2.1:7447" "$ALL"
install -m 0640 -o root -g "$NOBODY_GID" "$LAB_TMP/pki/local.crt" "$ETC/r1.crt"
install -m 0640 -o root -g "$NOBODY_GID" "$LAB_TMP/pki/local.key" "$ETC/r1.key"
start_agent r1 r1 root
if id mtr-agent >/dev/null 2>&1; then
  check_dropped r1 "$(id -u mtr-agent)" empty
  grep -q "running as user 'mtr-agent'" "$LAB_TMP/agent-r1.err" || lab_fail "r1: $(cat "$LAB_TMP/agent-r1.err")"
else
  check_dropped r1 0 empty
  grep -q "warn: running as root (no user 'mtr-agent' exists" "$LAB_TMP/agent-r1.err" ||
    lab_fail "r1: no warning about root: $(cat "$LAB_TMP/agent-r1.err")"
  lab_log "no user mtr-agent here: root with no capabilities, and the warning"
fi

# ---- the trace command: no capability once its sockets are open
lab_exec "$LAB_A" "$AGENT" trace "$LAB_B4" -n -u -c 20 -i 0.2 --gracetime 1 \
  >"$LAB_TMP/trace.out" 2>"$LAB_TMP/trace.err" &
TPID=$!
TRACE_PID=
for _ in $(seq 50); do
  TRACE_PID=$(pgrep -f "^$AGENT trace $LAB_B4 -n -u -c 20" | head -1 || true)
  [[ -n $TRACE_PID ]] && [[ $(pfield "$TRACE_PID" CapEff) == 0000000000000000 ]] && break
  sleep 0.1
done
[[ -n $TRACE_PID ]] || lab_fail "trace: no process found"
for f in CapEff CapPrm CapAmb; do
  [[ $(pfield "$TRACE_PID" $f) == 0000000000000000 ]] ||
    lab_fail "trace: $f $(pfield "$TRACE_PID" $f) while probing"
done
[[ $(pfield "$TRACE_PID" NoNewPrivs) == 1 ]] || lab_fail "trace: NoNewPrivs not set"
[[ $(puids "$TRACE_PID") == "0 0 0 0" ]] || lab_fail "trace: uids $(puids "$TRACE_PID")"
wait "$TPID" || lab_fail "trace: exit $?: $(cat "$LAB_TMP/trace.err")"
grep -q "$LAB_B4" "$LAB_TMP/trace.out" || lab_fail "trace: $LAB_B4 not reached: $(cat "$LAB_TMP/trace.out")"
[[ ! -s $LAB_TMP/trace.err ]] || lab_fail "trace: said something on stderr: $(cat "$LAB_TMP/trace.err")"
lab_log "trace as root: uid 0, no capabilities, no_new_privs while probing; $LAB_B4 reached"

# ---- clean stop after all of it
for name in local cvm r1; do
  kill -TERM "${PID[$name]}"
  RC=0
  wait "${PID[$name]}" || RC=$?
  ((RC == 0)) || lab_fail "$name: exit $RC after SIGTERM: $(tail -5 "$LAB_TMP/agent-$name.err")"
  grep -q 'info: stopped' "$LAB_TMP/agent-$name.err" || lab_fail "$name: no 'stopped'"
done
lab_log "PASS"
