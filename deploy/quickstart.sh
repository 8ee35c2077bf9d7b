#!/usr/bin/env bash
# The quick start: installs what is needed, builds, creates a two-host lab with
# asymmetric routes in network namespaces on this machine (host "local" = a,
# host "cvm" = b; a->b crosses r2f, b->a crosses r2r), makes a CA and
# certificates with `mtrctl pki`, starts one mtr-agent on each host, and runs
# the main job: `mtrctl diagnose local cvm`. Everything is removed on exit.
#
#   sudo ./deploy/quickstart.sh [--keep] [--loss PCT] [diagnose options...]
#     --keep       leave the lab up afterwards and print how to use it (Ctrl-C ends it)
#     --loss PCT   inject PCT% loss on the forward-only link r2f -> r3 first
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
keep=0 loss=0
args=()
while (($#)); do
  case $1 in
    --keep) keep=1 ;;
    --loss) loss=$2; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
[[ $(id -u) == 0 ]] || { echo "quickstart: run as root (network namespaces, raw sockets)" >&2; exit 2; }

"$src/deploy/install-deps.sh"
cmake -S "$src" -B "$src/build" >/dev/null
cmake --build "$src/build" -j"$(nproc)" --target mtr-agent mtrctl >/dev/null
export MD_BIN=$src/build MD_SRC=$src
source "$src/tests/lab/lib.sh"
lab_init
lab_build_diamond asym
lab_agents_up 4
lab_log "lab up: local=$(lab_ns "$LAB_A") ($LAB_A4), cvm=$(lab_ns "$LAB_B") ($LAB_B4), agents listening"
if ((loss > 0)); then
  lab_loss r2f 3 out "$loss"
  lab_log "injected $loss% loss on r2f -> r3 (a link only the forward path uses)"
fi
ctl=("$MD_BIN/controller/mtrctl" --config "$LAB_CTL_CONFIG")
bundle=$src/build/quickstart-bundle
rm -rf "$bundle"
echo "+ mtrctl diagnose local cvm -c 10 -i 0.5 -o $bundle ${args[*]}"
rc=0
lab_exec "$LAB_A" "${ctl[@]}" diagnose local cvm -c 10 -i 0.5 -o "$bundle" "${args[@]}" || rc=$?
echo "(exit status $rc: 0 healthy, 1 problem found, 3 an agent failed)"
echo "evidence bundle (kept after the lab is gone): $bundle: $(ls "$bundle" | tr '\n' ' ')"
if ((keep)); then
  cat <<EOT

The lab stays up. In another shell:
  ip netns exec $(lab_ns "$LAB_A") ${ctl[*]} agents
  ip netns exec $(lab_ns "$LAB_A") ${ctl[*]} diagnose local cvm --format markdown
  ip netns exec $(lab_ns "$LAB_A") ${ctl[*]} history
Ctrl-C here removes it.
EOT
  sleep infinity
fi
exit 0
