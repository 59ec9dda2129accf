#!/usr/bin/env bash
# Quick start, part one: install, build, then run weir in the foreground on config/weir.toml
# with the two small HTTP demo backends that config balances across (127.0.0.1:9001, :9002).
# Try it from another terminal:  curl http://127.0.0.1:8080/   (repeat: the backend alternates)
# Stop with Ctrl-C.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
"$top/packaging/deps.sh"
"$top/packaging/build.sh"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for n in 1 2; do
  "$top/build/tests/support/weir-testsrv" --listen "127.0.0.1:900$n" --mode http \
    --name "backend-$n" >/dev/null &
  pids+=($!)
done
echo "demo: backends on 127.0.0.1:9001 and :9002; weir on http://127.0.0.1:8080/ (Ctrl-C stops)"
"$top/build/lb/weir" -c "$top/config/weir.toml"
