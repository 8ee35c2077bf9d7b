#!/usr/bin/env bash
# The control channel end to end with the real binaries, in the linear lab
# (src -1- r1 -2- r2 -3- r3 -4- dst): certificates from `mtrctl pki`, `mtr-agent --config`
# on dst (198.18.4.2, 2001:db8:4::2), `mtrctl agents` from src.
#   - pki: init, issue (agent with --san, controllers ops and intruder, an expired one via
#     the hidden --not-after-seconds, a second CA); the printed pin_sha256 is the one openssl
#     computes; nothing is overwritten.
#   - without an agent: connection refused, a blackholed address (timeout, on time), an
#     unroutable one (unreachable), each with its own words and exit 3.
#   - with the agent: `agents` answers over v4 and v6 (version, identity, RTT, offset) and
#     exits 0; then, each with its own message and exit 3: controller not allowed (not
#     authorised), controller from another CA, expired controller certificate, agent pin
#     mismatch, agent name mismatch (tls_name), agent certificate from another CA; all of
#     them in one inventory at once, in parallel, within the timeout.
# Skips (77) when mtr-agent has no daemon (`mtr-agent --help` without --config) yet, after
# the checks that need no agent. Env: MD_BIN (build dir), MD_SRC (source dir). Needs root.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"

lab_require root jq nft openssl
BIN=${MD_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build}
CTL=$BIN/controller/mtrctl
AGENT=$(lab_agent_bin)
[[ -x $CTL ]] || lab_skip "$CTL is not built"
lab_sweep_stale
lab_init
T=$LAB_TMP

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

# Why: a daemon's log is written as it runs; wait for a line rather than sleep.
# Usage: wait_log FILE PATTERN [SECONDS]
wait_log() {
  local f=$1 pat=$2 secs=${3:-10} i
  for ((i = 0; i < secs * 20; i++)); do
    grep -qE -- "$pat" "$f" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# Why: one run of `mtrctl agents` from src; output in $T/NAME.{out,err}, exit status in RC,
# wall time in SECS.
# Usage: agents NAME CONFIG [ARGS...]
agents() {
  local name=$1 cfg=$2 t0
  shift 2
  t0=$(lab_now)
  RC=0
  lab_exec src "$CTL" --config "$cfg" agents "$@" >"$T/$name.out" 2>"$T/$name.err" || RC=$?
  SECS=$(lab_elapsed "$t0" "$(lab_now)")
  sed "s/^/    [$name] /" "$T/$name.out" "$T/$name.err" >&2
  no_sanitizer_reports "$T/$name.err"
}

# Why: a failing case must exit 3 and say, on the agent's own line, the words of its class.
# Usage: expect_failure NAME AGENT 'regex'
expect_failure() {
  local name=$1 agent=$2 re=$3 line
  ((RC == 3)) || lab_fail "$name: exit $RC, want 3"
  line=$(grep -E "^$agent +" "$T/$name.out") || lab_fail "$name: no line for agent $agent"
  grep -qE -- "FAILED +$re" <<<"$line" || lab_fail "$name: '$line' does not match 'FAILED $re'"
  lab_log "$name: $(sed -E 's/ +/ /g' <<<"$line" | cut -c1-160)"
}

# Why: base64 pins contain '+' and '/', which mean something in a regular expression.
re_quote() { sed 's/[][\.*^$+?(){}|/]/\\&/g' <<<"$1"; }

# Why: the controller's configuration for one case; relative paths resolve from $T.
# Usage: ctl_config FILE CERT_DIR CERT_NAME CA_DIR AGENTS_YAML
ctl_config() {
  cat >"$1" <<EOF
tls: { cert: $2/$3.crt, key: $2/$3.key, ca: $4/ca.crt }
history: $T/history.db
agents:
$5
EOF
}

# ---------------------------------------------------------------- pki
PKI=$T/pki
PKI2=$T/pki2
"$CTL" pki init --dir "$PKI" >"$T/init.out" || lab_fail "pki init failed"
[[ -s $PKI/ca.crt && -s $PKI/ca.key ]] || lab_fail "pki init wrote no CA"
[[ $(stat -c %a "$PKI/ca.key") == 600 ]] || lab_fail "ca.key is not 0600"
rc=0
"$CTL" pki init --dir "$PKI" 2>"$T/init2.err" || rc=$?
((rc == 1)) && grep -q 'exists' "$T/init2.err" || lab_fail "a second pki init: exit $rc, $(cat "$T/init2.err")"
"$CTL" pki issue --dir "$PKI" --name dst --role agent --san 198.18.4.2 --san 2001:db8:4::2 \
  >"$T/dst.issue" || lab_fail "pki issue dst failed"
"$CTL" pki issue --dir "$PKI" --name ops --role controller >"$T/ops.issue"
"$CTL" pki issue --dir "$PKI" --name intruder --role controller >/dev/null
"$CTL" pki issue --dir "$PKI" --name old --role controller --not-after-seconds -3600 >"$T/old.issue"
"$CTL" pki init --dir "$PKI2" >/dev/null
"$CTL" pki issue --dir "$PKI2" --name ops --role controller >/dev/null
"$CTL" pki issue --dir "$PKI2" --name dst --role agent --san 198.18.4.2 >/dev/null
PIN_DST=$(sed -n 's/^pin_sha256: //p' "$T/dst.issue")
PIN_OPS=$(sed -n 's/^pin_sha256: //p' "$T/ops.issue")
want=$(openssl x509 -in "$PKI/dst.crt" -pubkey -noout | openssl pkey -pubin -outform der |
  openssl dgst -sha256 -binary | base64)
[[ -n $PIN_DST && $PIN_DST == "$want" ]] || lab_fail "pin_sha256 printed '$PIN_DST', openssl says '$want'"
openssl x509 -in "$PKI/dst.crt" -noout -text | grep -q 'IP Address:198.18.4.2' || lab_fail "no IP SAN"
openssl x509 -in "$PKI/old.crt" -noout -checkend 0 >/dev/null && lab_fail "old.crt is not expired"
grep -q 'expired 3600 s ago' "$T/old.issue" || lab_fail "pki issue does not say old.crt is expired"
openssl verify -CAfile "$PKI/ca.crt" "$PKI/dst.crt" "$PKI/ops.crt" >/dev/null || lab_fail "chain"
lab_log "pki: CA, agent dst (pin $PIN_DST), controllers ops, intruder, old (expired), second CA"

# ---------------------------------------------------------------- the lab
lab_build_linear
DST4=$LAB_DST4
lab_nft_chains dst
lab_exec dst nft add rule inet mdl_fault in tcp dport 7449 drop # a blackholed service
lab_exec src ip route add unreachable 198.18.99.0/24             # an address with no route

# ---------------------------------------------------------------- failures without an agent
ctl_config "$T/noagent.yaml" pki ops pki "  refused: { address: \"$DST4:7448\" }
  blackholed: { address: \"$DST4:7449\" }
  unroutable: { address: \"198.18.99.1:7447\" }"
agents refused "$T/noagent.yaml" refused
expect_failure refused refused "connection refused: nothing listens on $DST4:7448"
agents blackholed "$T/noagent.yaml" blackholed --timeout 1
expect_failure blackholed blackholed "timeout: no TCP connection to $DST4:7449 within 1 s"
lab_in_range "$SECS" 0.9 2.5 || lab_fail "the 1 s timeout took $SECS s"
agents unroutable "$T/noagent.yaml" unroutable
expect_failure unroutable unroutable "unreachable: cannot connect to 198.18.99.1:7447"

# ---------------------------------------------------------------- the agent
rc=0
help=$(timeout 10 "$AGENT" --help 2>&1) || rc=$?
[[ -x $AGENT ]] && ((rc == 0)) && grep -q -- '--config' <<<"$help" ||
  lab_skip "$AGENT has no daemon (--config) yet; the checks without an agent passed"
cat >"$T/dst.yaml" <<EOF
name: dst
listen: ["$DST4:7447", "[$LAB_DST6]:7447"]
tls: { cert: pki/dst.crt, key: pki/dst.key, ca: pki/ca.crt, allowed_controllers: [ops, old] }
policy:
  allow_targets: ["198.18.1.1/32"]
EOF
lab_bg dst "$T/agent.out" "$T/agent.err" "$AGENT" --config "$T/dst.yaml"
AGENT_PID=$LAB_LAST_PID
wait_log "$T/agent.err" 'listening on' || lab_fail "the agent does not listen: $(cat "$T/agent.err")"
VERSION=$("$AGENT" --version | awk '{print $2}')

# ---------------------------------------------------------------- it answers
ctl_config "$T/ops.yaml" pki ops pki "  dst: { address: \"$DST4:7447\", pin_sha256: \"$PIN_DST\" }
  dst6: { address: \"[$LAB_DST6]:7447\", tls_name: dst }"
agents ok "$T/ops.yaml"
((RC == 0)) || lab_fail "mtrctl agents: exit $RC"
head -n 1 "$T/ok.out" | grep -qE '^AGENT +ADDRESS +STATUS +VERSION +HOSTNAME +IDENTITY +RTT_MS +OFFSET_MS' ||
  lab_fail "no header line"
for n in dst dst6; do
  grep -E "^$n +" "$T/ok.out" | grep -qE " ok +$VERSION +[^ ]+ +dst +[0-9.]+ +[-+][0-9.]+$" ||
    lab_fail "mtrctl agents: bad line for $n"
done
agents okjson "$T/ops.yaml" --format json
((RC == 0)) || lab_fail "mtrctl agents --format json: exit $RC"
J=$T/okjson.out
jq -e '.all_ok and (.agents | length == 2)' "$J" >/dev/null || lab_fail "json: not all ok"
for n in dst dst6; do
  jq -e --arg n "$n" --arg v "$VERSION" '.agents[] | select(.name == $n) |
      .ok and .cert_name == "dst" and .agent_name == "dst" and .version == $v and
      .rtt_ms >= 0 and .rtt_ms < 50 and (.clock_offset_ms | fabs) < 5 and
      (.addresses | index("198.18.4.2"))' "$J" >/dev/null ||
    lab_fail "json: $n: $(jq -c --arg n "$n" '.agents[] | select(.name == $n)' "$J")"
done
wait_log "$T/agent.err" "connection from 198\.18\.1\.1:[0-9]+ cert 'ops'" ||
  lab_fail "the agent did not log the connection: $(cat "$T/agent.err")"
lab_log "mtrctl agents: dst answers over v4 and v6 (version $VERSION, identity dst, offset < 5 ms)"

# ---------------------------------------------------------------- each refusal in its words
ctl_config "$T/intruder.yaml" pki intruder pki "  dst: { address: \"$DST4:7447\" }"
agents intruder "$T/intruder.yaml"
expect_failure intruder dst "not authorised: .*'intruder' is not in allowed_controllers"
wait_log "$T/agent.err" "cert 'intruder'.*not in allowed_controllers" || lab_fail "the agent did not log the refusal"

ctl_config "$T/otherca.yaml" pki2 ops pki "  dst: { address: \"$DST4:7447\" }"
agents otherca "$T/otherca.yaml"
expect_failure otherca dst "not authorised: the agent at $DST4:7447 refused our certificate: certificate not trusted"

ctl_config "$T/old.yaml" pki old pki "  dst: { address: \"$DST4:7447\" }"
agents expired "$T/old.yaml"
expect_failure expired dst "not authorised: the agent at $DST4:7447 refused our certificate: certificate expired"

ctl_config "$T/pin.yaml" pki ops pki "  dst: { address: \"$DST4:7447\", pin_sha256: \"$PIN_OPS\" }"
agents pin "$T/pin.yaml"
expect_failure pin dst "pin mismatch: agent certificate at $DST4:7447: expected $(re_quote "$PIN_OPS"), got $(re_quote "$PIN_DST")"

ctl_config "$T/name.yaml" pki ops pki "  dst: { address: \"$DST4:7447\", tls_name: cvm }"
agents name "$T/name.yaml"
expect_failure name dst "name mismatch: agent certificate at $DST4:7447: expected cvm, got dst"

ctl_config "$T/untrusted.yaml" pki2 ops pki2 "  dst: { address: \"$DST4:7447\" }"
agents untrusted "$T/untrusted.yaml"
expect_failure untrusted dst "agent certificate not trusted: "

# ---------------------------------------------------------------- all at once
ctl_config "$T/all.yaml" pki ops pki "  dst: { address: \"$DST4:7447\" }
  badpin: { address: \"$DST4:7447\", tls_name: dst, pin_sha256: \"$PIN_OPS\" }
  badname: { address: \"$DST4:7447\", tls_name: cvm }
  refused: { address: \"$DST4:7448\" }
  blackholed: { address: \"$DST4:7449\" }
  unroutable: { address: \"198.18.99.1:7447\" }"
agents all "$T/all.yaml" --timeout 1.5 --format json
((RC == 3)) || lab_fail "all: exit $RC, want 3"
lab_in_range "$SECS" 1.3 3 || lab_fail "six agents with --timeout 1.5 took $SECS s (not in parallel?)"
[[ $(jq -r '[.agents[] | "\(.name)=\(if .ok then "ok" else .error.code end)"] | join(" ")' "$T/all.out") == \
  "dst=ok badpin=pin_mismatch badname=name_mismatch refused=refused blackholed=timeout unroutable=unreachable" ]] ||
  lab_fail "all: $(jq -c '[.agents[] | [.name, .ok, .error.code]]' "$T/all.out")"
lab_log "six agents at once: one ok, five failures each with its code, in $SECS s"

# ---------------------------------------------------------------- stop
kill -TERM "$AGENT_PID"
rc=0
wait "$AGENT_PID" || rc=$?
((rc == 0)) || lab_fail "the agent exited $rc after SIGTERM"
no_sanitizer_reports "$T/agent.err"
agents down "$T/ops.yaml" dst
expect_failure down dst "connection refused: "
lab_log "PASS"
