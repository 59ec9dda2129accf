#!/usr/bin/env bash
# Quick start, part two: install, build and run the whole test suite (unit + integration).
# Integration tests that need root (BPF steering) skip with a reason when not run as root.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
"$top/packaging/deps.sh"
"$top/packaging/build.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cd "$top/build"
ctest --output-on-failure --timeout 600
