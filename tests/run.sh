#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is needed, builds twice
# (plain, and with AddressSanitizer + UndefinedBehaviorSanitizer), runs the
# unit tests on both builds, the lab tests (real packets in network
# namespaces; root) on the sanitizer build, and a short smoke run of each
# fuzz target when clang is present.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
"$src/deploy/install-deps.sh"
jobs=$(nproc)

build() { # dir, extra cmake args...
  local dir=$1; shift
  cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
}

echo "== build (plain) and unit tests"
build "$src/build"
(cd build && ctest -L unit --output-on-failure)

echo "== build (ASan+UBSan), unit and lab tests"
build "$src/build-asan" -DMD_SANITIZE=ON
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ "$(id -u)" != 0 ]; then
  echo "lab tests need root (network namespaces): skipping them" >&2
  (cd build-asan && ctest -L unit --output-on-failure)
else
  (cd build-asan && ctest --output-on-failure)
fi

if command -v clang >/dev/null; then
  echo "== fuzz smoke (${MD_FUZZ_SECONDS:-20} s per target)"
  CC=clang build "$src/build-fuzz" -DMD_FUZZ=ON >/dev/null
  for f in build-fuzz/tests/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    n=$(basename "$f")
    mkdir -p "build-fuzz/corpus-$n"
    "$f" -max_total_time="${MD_FUZZ_SECONDS:-20}" -print_final_stats=0 "build-fuzz/corpus-$n" \
      >"build-fuzz/$n.log" 2>&1 || { tail -40 "build-fuzz/$n.log"; echo "fuzz: $n FAILED"; exit 1; }
    echo "fuzz: $n ok ($(grep -c . "build-fuzz/corpus-$n" >/dev/null 2>&1; ls "build-fuzz/corpus-$n" | wc -l) corpus entries)"
  done
fi
echo "all tests passed"
