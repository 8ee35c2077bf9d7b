#!/usr/bin/env bash
# The agent daemon (`mtr-agent --config FILE`) as operators run it, in the asymmetric lab:
#   - without certificates: --help (with an example), --version, `trace` untouched, a config
#     error names file:line: key and exits 2, an unreadable TLS file exits 2 naming it;
#   - certificates from `mtrctl pki` (skip, exit 77, while it is not implemented);
#   - agents on a (one v4 and one v6 listener on its own addresses) and b ("0.0.0.0:7447" and
#     "[::]:7447" together); --check-config; a second agent on a busy port exits 1;
#   - `mtrctl agents` from a reaches both (v4 and v6, version, identity), and the precise
#     reason for a controller the agents do not allow and for an agent that is down;
#   - each connection is one log line (peer, certificate name, outcome);
#   - `mtrctl diagnose a b`, when it exists: both agents run and log their run, the paths are
#     the lab's forward and reverse paths;
#   - SIGTERM: exit 0 within seconds, nothing reported by ASan/UBSan.
# Env: MD_BIN (build dir), MD_SRC (source dir). Needs root.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"

lab_require root jq
AGENT=$(lab_agent_bin)
CTL=${MD_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build}/controller/mtrctl
[[ -x $AGENT ]] || lab_skip "$AGENT is not built"
lab_sweep_stale
lab_init

# Why: a daemon's log is written as it runs; tests wait for a line rather than sleep.
# Usage: wait_log FILE PATTERN [SECONDS]
wait_log() {
  local f=$1 pat=$2 secs=${3:-10} i
  for ((i = 0; i < secs * 20; i++)); do
    grep -qE -- "$pat" "$f" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# Why: a sanitizer build reports through stderr; any report fails the test.
no_sanitizer_reports() {
  local f
  for f in "$@"; do
    if grep -qE 'Sanitizer|runtime error' "$f" 2>/dev/null; then
      sed 's/^/    /' "$f" >&2
      lab_fail "sanitizer report in $f"
    fi
  done
}

# Why: stop one agent the way systemd does and insist on a clean, quick exit 0.
# Usage: stop_agent PID ERRFILE
stop_agent() {
  local pid=$1 err=$2 rc=0 t0 i
  t0=$(lab_now)
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  for i in "${!LAB_PIDS[@]}"; do [[ ${LAB_PIDS[i]} == "$pid" ]] && unset 'LAB_PIDS[i]'; done
  LAB_PIDS=("${LAB_PIDS[@]}")
  no_sanitizer_reports "$err"
  ((rc == 0)) || {
    sed 's/^/    /' "$err" >&2
    lab_fail "agent exited with $rc after SIGTERM (want 0)"
  }
  lab_in_range "$(lab_elapsed "$t0" "$(lab_now)")" 0 5 || lab_fail "agent took over 5 s to stop"
  grep -q 'stopping' "$err" || lab_fail "no 'stopping' line in $err"
}

# ---------------------------------------------------------------- without certificates
T=$LAB_TMP
"$AGENT" --help >"$T/help" || lab_fail "--help exited non-zero"
{ grep -q -- '--config' "$T/help" && grep -q 'example' "$T/help"; } || lab_fail "--help lacks --config or an example"
grep -q '/etc/mtr-agent/config.yaml' "$T/help" || lab_fail "--help does not name the default config"
"$AGENT" --version | grep -qE '^mtr-agent [0-9]+\.[0-9]+' || lab_fail "--version"
"$AGENT" trace --help >/dev/null || lab_fail "'mtr-agent trace --help' no longer works"
rc=0
"$AGENT" --bogus 2>"$T/usage.err" || rc=$?
((rc == 2)) || lab_fail "an unknown option exited $rc, not 2"

cat >"$T/bad.yaml" <<EOF
name: a
listen: ["127.0.0.1:7447"]
tls: { cert: a.crt, key: a.key, ca: ca.crt }
policy:
  max_cycles: 10
  max_cyclez: 10
EOF
rc=0
"$AGENT" --config "$T/bad.yaml" 2>"$T/bad.err" || rc=$?
((rc == 2)) || lab_fail "a config error exited $rc, not 2"
grep -qE "$T/bad.yaml:6: .*max_cyclez" "$T/bad.err" || {
  cat "$T/bad.err" >&2
  lab_fail "the config error does not name file:line: key"
}
rc=0
"$AGENT" --config "$T/missing.yaml" 2>"$T/missing.err" || rc=$?
{ ((rc == 2)) && grep -q "$T/missing.yaml" "$T/missing.err"; } || lab_fail "a missing config: exit $rc, $(cat "$T/missing.err")"
cat >"$T/nocert.yaml" <<EOF
name: a
listen: ["127.0.0.1:7447"]
tls: { cert: nowhere.crt, key: nowhere.key, ca: ca.crt }
EOF
rc=0
"$AGENT" --config "$T/nocert.yaml" 2>"$T/nocert.err" || rc=$?
{ ((rc == 2)) && grep -q "nowhere" "$T/nocert.err"; } || lab_fail "an unreadable certificate: exit $rc, $(cat "$T/nocert.err")"
no_sanitizer_reports "$T"/*.err
lab_log "command line, config and TLS file errors: ok"

# ---------------------------------------------------------------- certificates
[[ -x $CTL ]] || lab_skip "$CTL is not built"
PKI=$T/pki
if ! "$CTL" pki init --dir "$PKI" >"$T/pki.out" 2>&1 || [[ ! -s $PKI/ca.crt ]]; then
  lab_skip "'mtrctl pki' is not implemented yet: $(head -c 200 "$T/pki.out")"
fi
"$CTL" pki issue --dir "$PKI" --name a --role agent --san 198.18.1.1 --san 2001:db8:1::1 >/dev/null
"$CTL" pki issue --dir "$PKI" --name b --role agent --san 198.18.4.2 --san 2001:db8:4::2 >/dev/null
"$CTL" pki issue --dir "$PKI" --name ops --role controller >/dev/null
"$CTL" pki issue --dir "$PKI" --name intruder --role controller >/dev/null

# ---------------------------------------------------------------- the lab and the agents
lab_build_diamond asym

cat >"$T/a.yaml" <<EOF
name: a
listen: ["198.18.1.1:7447", "[2001:db8:1::1]:7447"]
tls: { cert: pki/a.crt, key: pki/a.key, ca: pki/ca.crt, allowed_controllers: [ops] }
policy:
  allow_targets: ["198.18.4.2/32", "2001:db8:4::2/128"]
  min_interval: 0.1
EOF
cat >"$T/b.yaml" <<EOF
name: b
listen: ["0.0.0.0:7447", "[::]:7447"]
tls: { cert: pki/b.crt, key: pki/b.key, ca: pki/ca.crt, allowed_controllers: [ops] }
policy:
  allow_targets: ["198.18.1.1/32", "2001:db8:1::1/128"]
  min_interval: 0.1
EOF
"$AGENT" --check-config --config "$T/a.yaml" >"$T/check.out" || lab_fail "--check-config failed"
grep -q 'configuration OK' "$T/check.out" || lab_fail "--check-config: $(cat "$T/check.out")"

lab_bg a "$T/a.out" "$T/a.err" "$AGENT" --config "$T/a.yaml"
PID_A=$LAB_LAST_PID
lab_bg b "$T/b.out" "$T/b.err" "$AGENT" --config "$T/b.yaml"
PID_B=$LAB_LAST_PID
wait_log "$T/a.err" 'listening on' || lab_fail "agent a does not listen: $(cat "$T/a.err")"
wait_log "$T/b.err" 'listening on' || lab_fail "agent b does not listen: $(cat "$T/b.err")"
grep -q 'listening on 198.18.1.1:7447, \[2001:db8:1::1\]:7447' "$T/a.err" || lab_fail "a: $(cat "$T/a.err")"
grep -q 'listening on 0.0.0.0:7447, \[::\]:7447' "$T/b.err" || lab_fail "b: $(cat "$T/b.err")"
lab_log "agents listening: a on its v4+v6 addresses, b on 0.0.0.0 and :: (same port)"

# a second agent on a port in use fails at once, naming the address; the first goes on
rc=0
lab_exec b timeout 10 "$AGENT" --config "$T/b.yaml" 2>"$T/b2.err" || rc=$?
{ ((rc == 1)) && grep -q 'cannot listen on 0.0.0.0:7447' "$T/b2.err"; } || lab_fail "busy port: exit $rc, $(cat "$T/b2.err")"
kill -0 "$PID_B" || lab_fail "agent b died"

# ---------------------------------------------------------------- mtrctl agents
ctl_config() { # FILE CERTNAME
  cat >"$1" <<EOF
tls: { cert: pki/$2.crt, key: pki/$2.key, ca: pki/ca.crt }
history: $T/history.db
agents:
  a: { address: "198.18.1.1:7447" }
  a6: { address: "[2001:db8:1::1]:7447", tls_name: a }
  b: { address: "[2001:db8:4::2]:7447" }
  b4: { address: "198.18.4.2:7447", tls_name: b }
EOF
}
ctl_config "$T/ops.yaml" ops
ctl_config "$T/intruder.yaml" intruder
VERSION=$("$AGENT" --version | awk '{print $2}')

rc=0
lab_exec a "$CTL" --config "$T/ops.yaml" agents --timeout 5 >"$T/agents.txt" 2>"$T/agents.err" || rc=$?
cat "$T/agents.txt" >&2
((rc == 0)) || lab_fail "mtrctl agents exited $rc: $(cat "$T/agents.err")"
for n in a a6 b b4; do
  grep -E "^$n +" "$T/agents.txt" | grep -q -- "$VERSION" || lab_fail "mtrctl agents: no version for $n"
done
if "$CTL" agents --help 2>/dev/null | grep -q json; then
  lab_exec a "$CTL" --config "$T/ops.yaml" agents --timeout 5 --format json >"$T/agents.json"
  jq -e '.all_ok' "$T/agents.json" >/dev/null || lab_fail "agents json: not all ok"
  [[ $(jq -r '.agents[] | select(.name == "b") | .cert_name' "$T/agents.json") == b ]] || lab_fail "b's identity"
  [[ $(jq -r '.agents[] | select(.name == "b4") | .agent_name' "$T/agents.json") == b ]] || lab_fail "b4's name"
  jq -e '.agents[] | select(.name == "b") | .addresses | index("198.18.4.2")' "$T/agents.json" >/dev/null ||
    lab_fail "b's HelloAck does not list 198.18.4.2"
fi
wait_log "$T/a.err" "connection from 198\.18\.1\.1:[0-9]+ cert 'ops'" || lab_fail "a did not log the connection"
wait_log "$T/b.err" "connection from \[2001:db8:1::1\]:[0-9]+ cert 'ops'" || lab_fail "b did not log the v6 connection"
wait_log "$T/b.err" "connection from 198\.18\.1\.1:[0-9]+ cert 'ops'" || lab_fail "b did not log the v4 connection"
lab_log "mtrctl agents: a and b answer over v4 and v6 with version $VERSION"

# a controller the agents do not allow: refused, with the reason on both sides
rc=0
lab_exec a "$CTL" --config "$T/intruder.yaml" agents a b --timeout 5 >"$T/intruder.txt" 2>&1 || rc=$?
cat "$T/intruder.txt" >&2
((rc != 0)) || lab_fail "mtrctl agents as intruder succeeded"
grep -qiE "allowed_controllers|not authori[sz]ed" "$T/intruder.txt" || lab_fail "no precise reason for the refusal"
wait_log "$T/b.err" "cert 'intruder'.*not in allowed_controllers" || lab_fail "b did not log the refusal"

# ---------------------------------------------------------------- runs, when diagnose exists
if "$CTL" diagnose --help >/dev/null 2>&1 && ! "$CTL" diagnose --help 2>&1 | grep -q 'not implemented'; then
  rc=0
  lab_exec a timeout 120 "$CTL" --config "$T/ops.yaml" diagnose a b -c 3 -i 0.2 -m 10 -n --format json \
    >"$T/diag.json" 2>"$T/diag.err" || rc=$?
  ((rc == 0 || rc == 1)) || lab_fail "diagnose exited $rc: $(cat "$T/diag.err")"
  lab_assert_same_hops "forward a->b" "$(jq -r '.forward.hops[] | .ttl as $t | .hosts[] | "\($t) \(.ip)"' "$T/diag.json")" \
    "$(lab_path_lines "${LAB_FWD6[@]}")" # b's inventory address is IPv6, a's IPv4
  lab_assert_same_hops "reverse b->a" "$(jq -r '.reverse.hops[] | .ttl as $t | .hosts[] | "\($t) \(.ip)"' "$T/diag.json")" \
    "$(lab_path_lines "${LAB_REV4[@]}")"
  wait_log "$T/a.err" "run .* icmp to 2001:db8:4::2 .*: OK" || lab_fail "a did not log its run"
  wait_log "$T/b.err" "run .* icmp to 198\.18\.1\.1 .*: OK" || lab_fail "b did not log its run"
  lab_log "diagnose a b: both agents ran; forward and reverse paths as built"
else
  lab_log "mtrctl diagnose is not implemented yet: runs are covered by unit/test_agent_session"
fi

# ---------------------------------------------------------------- stop
stop_agent "$PID_B" "$T/b.err"
rc=0
lab_exec a "$CTL" --config "$T/ops.yaml" agents b4 --timeout 3 >"$T/down.txt" 2>&1 || rc=$?
cat "$T/down.txt" >&2
{ ((rc != 0)) && grep -qi "refused" "$T/down.txt"; } || lab_fail "an agent that is down: exit $rc, no precise reason"
stop_agent "$PID_A" "$T/a.err"
no_sanitizer_reports "$T"/*.err
lab_log "SIGTERM: both agents stopped cleanly"
lab_log "PASS"
