#!/usr/bin/env bash
# The quick start: installs what is needed, builds, creates a two-host lab with
# asymmetric routes in network namespaces on this machine (host "local" = a,
# host "cvm" = b; a->b goes through r2f, b->a through r2r), and runs the main
# job on it. Everything is removed on exit.
#
#   sudo ./deploy/quickstart.sh [--keep]     --keep: leave the lab up (Ctrl-C ends it)
#
# Today the main job is the probe engine from both ends at the same moment:
# `mtr-agent trace` a->b and b->a, printed like `mtr --report`. (The controller's
# `mtrctl diagnose local cvm` replaces this once the secure channel lands.)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
keep=0
[[ ${1:-} == --keep ]] && keep=1
[[ $(id -u) == 0 ]] || { echo "quickstart: run as root (network namespaces, raw sockets)" >&2; exit 2; }

"$src/deploy/install-deps.sh"
cmake -S "$src" -B "$src/build" >/dev/null
cmake --build "$src/build" -j"$(nproc)" --target mtr-agent mtrctl >/dev/null
export MD_BIN=$src/build MD_SRC=$src
source "$src/tests/lab/lib.sh"
lab_init
lab_build_diamond asym
agent=$src/build/agent/mtr-agent
lab_log "lab up: local=$(lab_ns "$LAB_A") ($LAB_A4) cvm=$(lab_ns "$LAB_B") ($LAB_B4)"

lab_exec "$LAB_A" "$agent" trace -n -c 10 -i 0.5 "$LAB_B4" >"$LAB_TMP/forward.txt" &
fwd=$!
lab_exec "$LAB_B" "$agent" trace -n -c 10 -i 0.5 "$LAB_A4" >"$LAB_TMP/reverse.txt" &
rev=$!
wait "$fwd" "$rev"
echo "== forward: local ($LAB_A4) -> cvm ($LAB_B4)"
cat "$LAB_TMP/forward.txt"
echo "== reverse: cvm ($LAB_B4) -> local ($LAB_A4)"
cat "$LAB_TMP/reverse.txt"
echo "(the two paths differ at TTL 2-3: the lab routes a->b through r2f and b->a through r2r)"
if ((keep)); then
  echo "lab kept up; try: ip netns exec $(lab_ns "$LAB_A") $agent trace $LAB_B4   (Ctrl-C to end)"
  sleep infinity
fi
