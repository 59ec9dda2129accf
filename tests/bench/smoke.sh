#!/usr/bin/env bash
# ctest's bench_smoke: the benchmark's --quick run, to keep it working. It never judges the
# figures; it fails only if the benchmark cannot run. Needs root (it installs haproxy, nginx,
# iperf3 and wrk from Debian's packages and runs weir with BPF steering).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "bench_smoke skipped: needs root to install the compared proxies and load BPF"
  exit 77
fi
# The three the README compares (direct and forced splice are left to full runs): CI's time is
# bounded.
exec "$(dirname "$0")/run.sh" --quick --targets weir,haproxy-spliceauto,nginx "$@"
