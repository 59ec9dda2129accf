#!/usr/bin/env bash
# Quick start, part two, and all of CI (.ci/run runs exactly this). In order, each stage failing
# the script:
#   deps             packaging/deps.sh
#   build, tests     the normal build (packaging/build.sh, build/) and its whole ctest suite
#   asan-build       build-asan/: clang with AddressSanitizer + UndefinedBehaviorSanitizer
#   asan-tests       unit and integration suites there, every weir on the io_uring event
#                    engine; any sanitizer report fails (tests/sanitizers/run.sh)
#   fuzz-build       build-fuzz/: the libFuzzer targets (clang, -DWEIR_FUZZ=ON)
#   fuzz             each target for WEIR_FUZZ_SECONDS (default 10) from its seed corpus,
#                    one per CPU at a time (tests/fuzz/run.sh); any crash, leak, timeout or
#                    UB report fails
# Integration tests that need root (BPF steering) skip with a reason when not run as root;
# as root, BPF steering that fails to load fails them.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
# 10 s a target keeps the whole of CI within its 30 minutes on a 2-core machine.
fuzz_seconds="${WEIR_FUZZ_SECONDS:-10}"
jobs="$(nproc)"

timings=()
current=""
began=$SECONDS
stage_began=$SECONDS
report() {
  local rc=$?
  echo "test.sh: stage timings"
  for t in "${timings[@]}"; do
    echo "  $t"
  done
  if [ "$rc" -ne 0 ] && [ -n "$current" ]; then
    echo "  $current FAILED after $((SECONDS - stage_began))s"
  fi
  echo "  total $((SECONDS - began))s"
}
trap report EXIT

# stage NAME COMMAND...: runs COMMAND, records how long it took; a failure ends the script.
stage() {
  current="$1"
  shift
  stage_began=$SECONDS
  echo "=== test.sh: $current"
  "$@"
  timings+=("$(printf '%-11s %5ds' "$current" $((SECONDS - stage_began)))")
  current=""
}

normal_tests() {
  local log="$top/build/ctest.log"
  (cd "$top/build" && ctest --output-on-failure --timeout 600 | tee "$log"; exit "${PIPESTATUS[0]}")
  # As root every test can run; one that skips there hides a check CI must make.
  if [ "$(id -u)" -eq 0 ] && grep -q '\*\*\*Skipped' "$log"; then
    echo "test.sh: tests skipped although running as root:" >&2
    grep '\*\*\*Skipped' "$log" >&2
    return 1
  fi
}

clang_build() {  # clang_build DIR CMAKE_OPTION...
  local dir="$1"
  shift
  # Line tables are all a sanitizer or fuzzer report needs to name file and line; full debug
  # info would make these two builds a minute or two slower each. -O1, as the sanitizers'
  # own documentation suggests: it compiles about 15% faster than -O2, which CI's 30 minutes
  # on 2 cores need more than these builds need the speed.
  local flags="-O1 -gline-tables-only -DNDEBUG"
  cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
        -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_FLAGS_RELWITHDEBINFO="$flags" \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$flags" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
}

stage deps "$top/packaging/deps.sh"
# -g1 (line tables and functions, what a backtrace or perf needs) instead of -g: the build
# compiles about 30% faster and links far smaller binaries, which CI's 30 minutes need.
stage build "$top/packaging/build.sh" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
# Tests hold thousands of sockets at once.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
stage tests normal_tests
# The sanitizer build's integration tests run every weir on the io_uring event engine, the
# plain build's on the default (epoll): the whole suite passes on both engines.
stage asan-build clang_build "$top/build-asan" -DWEIR_SANITIZE=ON -DWEIR_TEST_EVENT_ENGINE=io_uring
stage asan-tests "$top/tests/sanitizers/run.sh" "$top/build-asan"
stage fuzz-build clang_build "$top/build-fuzz" -DWEIR_FUZZ=ON
stage fuzz "$top/tests/fuzz/run.sh" "$top/build-fuzz" "$fuzz_seconds"
