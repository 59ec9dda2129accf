#!/usr/bin/env bash
# Runs the unit and integration suites of a sanitizer build (-DWEIR_SANITIZE=ON; packaging/
# test.sh uses build-asan) and fails on any failed test and on any sanitizer report.
#
#   tests/sanitizers/run.sh BUILD_DIR [CTEST_ARGS...]
#
# A report from a weir worker or health checker would not fail a test by itself: the process
# dies, the master starts another and the test may still pass. So every process of the run
# (test binaries, weir masters and children, weir-testsrv) writes its reports into one fresh
# directory, and any file there fails the run and is printed.
set -euo pipefail

die() { echo "sanitizers: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: run.sh BUILD_DIR [CTEST_ARGS...]"
build="$(cd "$1" && pwd)"
shift
grep -q '^WEIR_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null ||
  die "$build is not a sanitizer build (configure it with -DWEIR_SANITIZE=ON)"

reports="$build/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"

# ASan (LeakSanitizer included) and UBSan write to REPORTS/KIND.PID. Leaks: the weir master,
# the test programs and weir-testsrv leave through exit() and are checked. Workers and the
# health checker leave through _exit() on purpose (a forked child must not run the master's
# destructors), which LeakSanitizer does not check. No suppressions: nothing third-party has
# leaked so far.
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1"
export LSAN_OPTIONS="log_path=$reports/lsan"
export UBSAN_OPTIONS="log_path=$reports/ubsan:halt_on_error=1:print_stacktrace=1"

status=0
# Everything but the benchmark smoke test (a run of third-party proxies, nothing to sanitize),
# the ECMP tests (BIRD and FRR routing, with weir's route announcing, which Announce.* covers
# here), and the "hash" twins of the long under-load steering tests (the same weir code as
# their least-loaded runs but for the steering mode, which Modes/Steering.* covers here), and
# the 15-second pipe budget test with four unprivileged workers (the budget's arithmetic is
# unit-tested here): CI must stay within 30 minutes, and the plain build runs all of them.
log="$build/sanitizer-ctest.log"
twins='(ReloadUnderLoad|UpgradeUnderLoad|UpgradeChildFds|CrashLoop)'
skip="^EcmpLab|^Ecmp\\.|^Steering/$twins\\..*/hash|^PipeBudget\\.FourUnprivileged"
(cd "$build" && ctest --output-on-failure --timeout 600 -LE bench -E "$skip" "$@" | tee "$log"
 exit "${PIPESTATUS[0]}") || status=$?
# As root every test can run; one that skips there hides a check CI must make.
if [ "$(id -u)" -eq 0 ] && grep -q '\*\*\*Skipped' "$log"; then
  echo "sanitizers: tests skipped although running as root:" >&2
  grep '\*\*\*Skipped' "$log" >&2
  status=1
fi

found=$(find "$reports" -type f | sort)
if [ -n "$found" ]; then
  echo "sanitizers: $(echo "$found" | wc -l) report(s):" >&2
  for f in $found; do
    echo "===== $f =====" >&2
    cat "$f" >&2
  done
  status=1
fi
if [ "$status" -ne 0 ]; then
  die "failed (tests or sanitizer reports above)"
fi
echo "sanitizers: unit and integration suites passed with no sanitizer report"
