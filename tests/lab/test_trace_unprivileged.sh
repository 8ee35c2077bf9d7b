#!/usr/bin/env bash
# test_trace_unprivileged.sh: the unprivileged fallback. In the source namespace ICMP
# datagram ("ping") sockets are allowed for every group (net.ipv4.ping_group_range, which
# covers ICMPv6 too); the agent runs as nobody with no capabilities and no way to gain any
# (no_new_privs). It must still trace ICMP over IPv4 and IPv6 (the same hops as the lab's
# known path), and say exactly once on stderr that it fell back to datagram sockets.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lab_require root ip mtr jq nft ping setpriv
lab_sweep_stale

# Matches the agent's one-line notice, however it is worded ("falling back to unprivileged
# ICMP datagram sockets", "fell back to ping sockets" ...).
FALLBACK_RE='fall(s|ing)? ?back|fell back|datagram|ping socket|unprivileged'
DROP=(setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --no-new-privs)

HAVE_AGENT=0
lab_agent_has_trace && HAVE_AGENT=1

# Why: nobody must be able to execute the agent; a build tree under a private directory is
# not, so the binary is copied to a world-readable place then.
agent_for_nobody() {
  local bin
  bin=$(lab_agent_bin)
  if lab_exec "$LAB_SRC" "${DROP[@]}" test -x "$bin"; then
    printf '%s\n' "$bin"
  else
    chmod 755 "$LAB_TMP"
    install -m 755 "$bin" "$LAB_TMP/mtr-agent"
    printf '%s\n' "$LAB_TMP/mtr-agent"
  fi
}

# Why: the lab allows what the agent needs: ping (datagram sockets) works as nobody.
check_ping_as_nobody() {
  local target=$1
  lab_exec "$LAB_SRC" "${DROP[@]}" ping -n -q -c 2 -i 0.2 -W 1 "$target" >/dev/null ||
    lab_fail "ping as nobody to $target fails: ping_group_range not effective"
  lab_log "ok: ping as nobody reaches $target"
}

# Why: one family: agent as nobody, expected hops, exactly one fallback notice.
check_agent_as_nobody() {
  local fam=$1 target=$2 bin=$3 a=$LAB_TMP/nobody.v$1.json n
  shift 3
  lab_exec "$LAB_SRC" timeout 120 "${DROP[@]}" "$bin" trace "$target" -n "-$fam" -c 5 -i 0.2 \
    --gracetime 1 --json >"$a" 2>"$a.err" || {
    cat "$a.err" >&2
    lab_fail "mtr-agent trace as nobody (v$fam) failed"
  }
  lab_assert_same_hops "agent as nobody v$fam" "$(lab_agent_hops "$a")" "$(lab_path_lines "$@")"
  n=$(grep -ciE "$FALLBACK_RE" "$a.err" || true)
  [[ $n == 1 ]] || {
    cat "$a.err" >&2
    lab_fail "agent as nobody v$fam: $n fallback notices on stderr, expected exactly 1"
  }
  lab_log "ok: agent as nobody v$fam traced ${*} and said: $(grep -iE "$FALLBACK_RE" "$a.err")"
}

# Why: UDP and TCP need raw sockets; without them the agent must refuse with a reason
# (non-zero exit, a message) rather than hang or trace nothing silently.
check_udp_refused() {
  local bin=$1 a=$LAB_TMP/nobody.udp.out rc=0
  lab_exec "$LAB_SRC" timeout 60 "${DROP[@]}" "$bin" trace "$LAB_DST4" -u -n -c 2 -i 0.2 \
    --gracetime 1 --json >"$a" 2>"$a.err" || rc=$?
  ((rc != 0 && rc != 124)) || lab_fail "agent -u as nobody: exit status $rc, expected a refusal"
  [[ -s $a.err ]] || lab_fail "agent -u as nobody: refused without a message"
  lab_log "ok: agent -u as nobody refused (status $rc): $(tail -n 1 "$a.err")"
}

lab_init
lab_build_linear
lab_sysctl "$LAB_SRC" net.ipv4.ping_group_range="0 2147483647"
check_ping_as_nobody "$LAB_DST4"
check_ping_as_nobody "$LAB_DST6"
((HAVE_AGENT)) || lab_skip "lab verified; $(lab_agent_bin) has no working 'trace' yet"

bin=$(agent_for_nobody)
check_agent_as_nobody 4 "$LAB_DST4" "$bin" "${LAB_PATH4[@]}"
check_agent_as_nobody 6 "$LAB_DST6" "$bin" "${LAB_PATH6[@]}"
check_udp_refused "$bin"
echo "test_trace_unprivileged: passed"
