#!/usr/bin/env bash
# Runs each libFuzzer target of a fuzz build for a bounded time, starting from the committed
# seed corpus, and fails on any finding: a crash, a violated property, a leak, a timeout, an
# out-of-memory or a UBSan report (the build makes every one of them abort).
#
#   tests/fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]
#
# BUILD_DIR is a build configured with -DWEIR_FUZZ=ON (packaging/test.sh uses build-fuzz);
# SECONDS per target defaults to 60; no TARGET means every target in BUILD_DIR/fuzz-targets.txt.
# Targets run in parallel, as many at once as there are CPUs (nproc).
# New inputs go to BUILD_DIR/fuzz-out/TARGET/corpus, findings to BUILD_DIR/fuzz-out/TARGET/.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
die() { echo "fuzz: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: run.sh BUILD_DIR [SECONDS] [TARGET...]"
build="$(cd "$1" && pwd)"
seconds="${2:-60}"
shift $(($# >= 2 ? 2 : 1))
list="$build/fuzz-targets.txt"
[ -f "$list" ] || die "$list is missing: configure $build with -DWEIR_FUZZ=ON and build it"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"

# Runs one target; its verdict goes to OUT/verdict ("ok" or "failed"), its summary to
# OUT/summary. The targets run side by side, one per CPU: each is single-threaded.
fuzz_one() {
  local name="$1" max_len="$2" bin="$3" seeds="$here/corpus/$1" out="$build/fuzz-out/$1"
  local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len"
              -artifact_prefix="$out/" -print_final_stats=1)
  [ -f "$here/$name.dict" ] && args+=(-dict="$here/$name.dict")
  local verdict=ok
  # libFuzzer adds new inputs to the first corpus directory and only reads the seeds.
  if ! "$bin" "${args[@]}" "$out/corpus" "$seeds" >"$out/log" 2>&1; then
    verdict=failed
  fi
  if [ -n "$(find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
             -o -name 'timeout-*' -o -name 'oom-*' \))" ]; then
    verdict=failed
  fi
  local cov runs speed rss corpus
  cov=$(grep -E '^#[0-9]+.*cov: ' "$out/log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$out/log")
  corpus=$(find "$out/corpus" -type f | wc -l)
  echo "fuzz: $name: ${runs:-?} runs in ${seconds}s, ${speed:-?} exec/s, ${cov:-cov: ?}," \
       "$corpus new inputs, peak RSS ${rss:-?} MB" >"$out/summary"
  echo "$verdict" >"$out/verdict"
}

parallel="$(nproc)"
names=()
while read -r name max_len bin; do
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then
    continue
  fi
  [ -d "$here/corpus/$name" ] || die "$name has no seed corpus ($here/corpus/$name)"
  [ -x "$bin" ] || die "$bin is not built"
  out="$build/fuzz-out/$name"
  rm -rf "$out"
  mkdir -p "$out/corpus"
  names+=("$name")
  if [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; then
    wait -n || true
  fi
  fuzz_one "$name" "$max_len" "$bin" &
done <"$list"
wait

ran=${#names[@]}
failed=()
for name in "${names[@]}"; do
  out="$build/fuzz-out/$name"
  cat "$out/summary" 2>/dev/null || echo "fuzz: $name: no summary"
  if [ "$(cat "$out/verdict" 2>/dev/null)" != ok ]; then
    failed+=("$name")
    echo "fuzz: $name FAILED; the end of $out/log:" >&2
    tail -n 60 "$out/log" >&2
    for a in $(find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
               -o -name 'timeout-*' -o -name 'oom-*' \) | sort); do
      echo "fuzz: input saved as $a" >&2
    done
  fi
done

[ "$ran" -gt 0 ] || die "no fuzz target matched"
if [ ${#failed[@]} -gt 0 ]; then
  die "findings in: ${failed[*]}"
fi
echo "fuzz: $ran targets ran ${seconds}s each without a finding"
