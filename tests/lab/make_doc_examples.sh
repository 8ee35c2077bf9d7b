#!/usr/bin/env bash
# tests/lab/make_doc_examples.sh: the worked examples of docs/reading-reports.md, from real runs.
#
# A documentation generator, not a test (ctest only picks up test_*.sh). It builds the
# asymmetric lab of lib.sh (network namespaces on this machine, addresses from 198.18.0.0/15
# only, nothing leaves the lab), starts the two agents "local" (host a) and "cvm" (host b)
# with certificates from `mtrctl pki`, injects one fault at a time, runs
#     mtrctl --config $LAB_CTL_CONFIG diagnose local cvm -c 50 -i 0.05 -o BUNDLE
# from host a's namespace, and writes under OUTDIR (default docs/examples/):
#     README.md               index: each example, the fault, the command, exit status, suspect
#     <example>/report.txt    what the command printed (--format text, the default)
#     <example>/report.json   the JSON report of the same run (the bundle's report.json)
#     reverse-path-loss/bundle/   one whole evidence bundle, as attached to a ticket
#
#   a -1- r1 -2- r2f -3- r3 -4- b        a -> b (forward) crosses r2f
#         r1 -5- r2r -6- r3              b -> a (reverse) crosses r2r
#
# Examples (the fault, with the lib.sh call that makes it):
#   healthy                     none
#   rate-limiting               r2f answers with ICMP errors at most once a second
#                               (lab_icmp_ratelimit r2f 1000)
#   destination-firewall        b drops 30% of the echo requests sent to it (lab_drop_echo b 30)
#   reverse-path-loss           r2r drops 30% of what it sends to r1, a link only the reverse
#                               path uses (lab_loss r2r 5 out 30)
#   reverse-path-loss-followups the same, with --no-oneway: follow-up pings decide instead
#   reverse-latency             r2r holds what it sends to r1 for 40 ms (lab_delay r2r 5 out 40)
#
# Each run is checked against what the example is meant to show (the suspect, the rate-limited
# hop, ...). Loss is random, so a run that does not show it is repeated, at most 3 times; then
# the script fails and OUTDIR is left as it was. Examples are written only when all succeeded.
#
# Usage, as root, from anywhere:
#     MD_BIN=/path/to/build tests/lab/make_doc_examples.sh [OUTDIR]
# MD_BIN is a build directory (default: the source tree's build/) with controller/mtrctl,
# agent/mtr-agent and tests/md-delay. Needs: iproute2 nftables iptables jq dnsmasq iputils-ping.
# Exit 0 written, 1 failed, 77 a requirement missing (not root, a tool or md-delay absent).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
MD_BIN=$(cd "${MD_BIN:-$repo/build}" && pwd)
export MD_BIN
OUT=${1:-$repo/docs/examples}
CYCLES=50
INTERVAL=0.05
TRIES=3

# shellcheck source=tests/lab/lib.sh
source "$here/lib.sh"
lab_require root ip jq nft ping dnsmasq iptables ip6tables
lab_require_delay
[[ -x $MD_BIN/controller/mtrctl && -x $MD_BIN/agent/mtr-agent ]] ||
  lab_skip "no mtrctl / mtr-agent in $MD_BIN (build first: cmake -S . -B build && cmake --build build)"
lab_sweep_stale
lab_init
lab_build_diamond asym
# Reverse DNS for the agents, as operators would see it: a dnsmasq on each end host answers
# for every lab address (r2f.lab.test, ...), locally, so faults on the links never delay a name.
lab_dns_start a 198.18.1.1 a
lab_bg b "$LAB_TMP/dnsmasq-b.out" "$LAB_TMP/dnsmasq-b.err" dnsmasq --keep-in-foreground \
  --conf-file=/dev/null --no-resolv --no-hosts --addn-hosts="$LAB_TMP/dns-hosts" \
  --listen-address=198.18.4.2 --bind-interfaces --port=53 --user=root --group=root \
  --pid-file="$LAB_TMP/dnsmasq-b.pid"
lab_resolver b 198.18.4.2 1 2
for try in $(seq 1 50); do
  [[ $(lab_exec b getent hosts 198.18.4.1 2>/dev/null | awk '{print $2}') == r3.lab.test ]] && break
  ((try < 50)) || lab_fail "lab DNS on b does not answer (see $LAB_TMP/dnsmasq-b.err)"
  sleep 0.1
done
lab_agents_up 4
STAGE=$LAB_TMP/examples
mkdir -p "$STAGE"
INDEX=$STAGE/index.rows

# Why: one example: fault on, up to TRIES runs until the report shows what the example is
# about, fault off, then the text output and the same run's JSON into the staging dir.
# Usage: example NAME "FAULT (words)" "SETUP" "CLEAR" JQ_CHECK [extra diagnose options...]
example() {
  local name=$1 fault=$2 setup=$3 clear=$4 check=$5 try rc dir bundle
  shift 5
  local args=(diagnose local cvm -c "$CYCLES" -i "$INTERVAL" "$@")
  dir=$STAGE/$name
  mkdir -p "$dir"
  eval "$setup"
  for ((try = 1; try <= TRIES; try++)); do
    bundle=$LAB_TMP/$name.bundle.$try
    rc=0
    lab_exec "$LAB_A" "$MD_BIN/controller/mtrctl" --config "$LAB_CTL_CONFIG" "${args[@]}" \
      -o "$bundle" >"$dir/report.txt" 2>"$LAB_TMP/$name.err" || rc=$?
    [[ -s $bundle/report.json ]] || lab_fail "$name: no report (exit $rc): $(cat "$LAB_TMP/$name.err")"
    if jq -e "$check" "$bundle/report.json" >/dev/null; then
      break
    fi
    lab_log "$name: run $try does not show it yet ($(jq -c '.diagnosis.suspect |
      if . == null then "no suspect" else "\(.kind) \(.path) \(.from_ip) -> \(.to_ip)" end' \
      "$bundle/report.json")); again"
    ((try < TRIES)) || lab_fail "$name: $TRIES runs and none shows $check"
  done
  eval "$clear"
  cp "$bundle/report.json" "$dir/report.json"
  if [[ $name == reverse-path-loss ]]; then
    cp -r "$bundle" "$dir/bundle"
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$fault" "mtrctl --config \$LAB_CTL_CONFIG ${args[*]}" "$rc" \
    "$(jq -r '.diagnosis | "\(.status); " + (.suspect | if . == null then "no suspect"
      else "\(.kind) on the \(.path) path, \(.from_ip) -> \(.to_ip), confidence \(.confidence)" end)' \
      "$dir/report.json")" >>"$INDEX"
  lab_log "ok: $name (exit $rc): $(tail -n 1 "$INDEX" | cut -f5)"
}

suspect() { # KIND PATH FROM TO: the jq test for diagnosis.suspect
  printf '(.diagnosis.suspect.kind == "%s" and .diagnosis.suspect.path == "%s" and .diagnosis.suspect.from_ip == "%s" and .diagnosis.suspect.to_ip == "%s")' "$@"
}

example healthy "none" ":" ":" \
  '.diagnosis.status == "healthy" and .diagnosis.suspect == null and .one_way != null'

example rate-limiting \
  "r2f (forward hop 2) sends at most one ICMP error a second after a short burst: lab_icmp_ratelimit r2f 1000" \
  "lab_icmp_ratelimit r2f 1000" "lab_fault_clear r2f" \
  '.diagnosis.status == "healthy" and .diagnosis.suspect == null and
   any(.diagnosis.rate_limited[]; .path == "forward" and .ttl == 2)'

example destination-firewall \
  "b (cvm) drops 30% of the echo requests addressed to it (nftables): lab_drop_echo b 30" \
  "lab_drop_echo b 30" "lab_fault_clear b" \
  "$(suspect destination_host forward 198.18.3.2 198.18.4.2) and .forward.verdict.segment == \"destination_host\""

example reverse-path-loss \
  "r2r drops 30% of the packets it sends to r1 (link r2r -> r1, used by the reverse path only): lab_loss r2r 5 out 30" \
  "lab_loss r2r 5 out 30" "lab_fault_clear r2r" \
  "$(suspect loss reverse 198.18.6.1 198.18.5.1) and .forward.verdict.first_loss_ttl == 3 and
   .reverse.verdict.first_loss_ttl == 3 and .one_way.reverse.loss_pct > 10 and .one_way.forward.loss_pct < 5"

example reverse-path-loss-followups \
  "the same loss on r2r -> r1, measured without the one-way stream (--no-oneway): lab_loss r2r 5 out 30" \
  "lab_loss r2r 5 out 30" "lab_fault_clear r2r" \
  "$(suspect loss reverse 198.18.6.1 198.18.5.1) and .one_way == null and (.followup | length) > 0" \
  --no-oneway

example reverse-latency \
  "r2r holds every packet it sends to r1 for 40 ms (NFQUEUE, md-delay): lab_delay r2r 5 out 40" \
  "lab_delay r2r 5 out 40" "lab_delay_clear r2r 5 out" \
  "$(suspect latency reverse 198.18.6.1 198.18.5.1) and .one_way.reverse.delay_avg_ms > 30"

# The index, then the examples replace what OUTDIR held.
# shellcheck disable=SC2016 # the backquotes are markdown, not command substitution
{
  printf '# Worked examples (generated)\n\n'
  printf 'Written by `tests/lab/make_doc_examples.sh` on %s with mtrctl %s; explained in\n' \
    "$(date -u +%Y-%m-%dT%H:%MZ)" "$("$MD_BIN/controller/mtrctl" --version | awk '{print $NF}')"
  printf '[../reading-reports.md](../reading-reports.md). Do not edit: run the script again.\n\n'
  printf 'The lab: `a -1- r1 -2- r2f -3- r3 -4- b`, `r1 -5- r2r -6- r3`; agent "local" on a\n'
  printf '(198.18.1.1), agent "cvm" on b (198.18.4.2); a -> b crosses r2f, b -> a crosses r2r.\n'
  printf 'Link L is 198.18.L.0/30, its left end .1, its right end .2. mtrctl runs on a.\n\n'
  printf '| example | fault injected | exit | diagnosis |\n| --- | --- | --- | --- |\n'
  while IFS=$'\t' read -r name fault _ rc diag; do
    printf '| [%s](%s/report.txt) ([json](%s/report.json)) | %s | %s | %s |\n' \
      "$name" "$name" "$name" "$fault" "$rc" "$diag"
  done <"$INDEX"
  printf '\nEvery example ran `mtrctl --config $LAB_CTL_CONFIG diagnose local cvm -c %s -i %s -o DIR`\n' \
    "$CYCLES" "$INTERVAL"
  printf '(reverse-path-loss-followups adds `--no-oneway`). `reverse-path-loss/bundle/` is that\n'
  printf 'run'"'"'s whole evidence bundle. Loss is random: another run gives other figures.\n'
} >"$STAGE/README.md"
rm -f "$INDEX"
mkdir -p "$OUT"
for d in "$STAGE"/*/; do
  rm -rf "${OUT:?}/$(basename "$d")"
done
cp -r "$STAGE"/. "$OUT"/
lab_log "examples written to $OUT"
