#!/usr/bin/env bash
# Measures uring-proto's engines (epoll and three io_uring variants) and weir itself on short
# connections: wrk with "Connection: close" through each, 2 workers each, against one nginx
# backend answering "ok". Rounds alternate the targets (order reversed every other round);
# RESULTS.md's table is the output of this script.
#
#   proto/uring/measure.sh [ROUNDS] [SECONDS]     (defaults 7 and 5; about 40 s a round)
#
# Needs the prototype built (proto/uring/build/uring-proto) and weir built in the worktree
# (build/lb/weir; WEIR=path overrides). Every process it starts is stopped at exit, and every
# proxy exits by itself after SECONDS+20 s anyway.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
rounds=${1:-7}
seconds=${2:-5}
proto=$here/build/uring-proto
weir=${WEIR:-$repo/build/lb/weir}
out=/tmp/uring-proto/results
. "$here/backend.sh"
trap 'stop_all' EXIT
mkdir -p "$out"
: >"$out/rounds.tsv"

targets=(epoll io_uring io_uring-direct-up io_uring-direct weir)

# Starts a target on port 18080 in the background; sets $root to its top process.
start_target() {
  if [ "$1" = weir ]; then
    cat >"$out/weir.toml" <<CONF
[global]
workers = 2
steering = "least-loaded"
access_log = "off"
log_level = "warn"
error_log = "$out/weir-error.log"
max_connections = 8000

[listeners.http]
bind = ["127.0.0.1:18080"]
pool = "http"
backlog = 4096

[pools.http]
connect_timeout = "5s"
idle_timeout = "10m"
backends = [{ address = "127.0.0.1:18081" }]
CONF
    timeout --signal=TERM $((seconds + 20)) "$weir" -c "$out/weir.toml" &
  else
    "$proto" --listen 127.0.0.1:18080 --backend 127.0.0.1:18081 --engine "$1" --workers 2 \
      --max-seconds $((seconds + 20)) 2>>"$out/proxy-stderr.log" &
  fi
  root=$!
  pids+=("$root")
  wait_port 18080
  # Wait (5 s at most) for both workers: weir's master (under timeout) forks them after it
  # listens, with its health checker.
  local want=2
  [ "$1" = weir ] && want=3
  for _ in $(seq 100); do
    [ "$(workers | wc -w)" -ge "$want" ] && break
    sleep 0.05
  done
}

# Every process under $root (timeout's child for weir: its master, then the workers).
tree() {
  local p=$1
  echo "$p"
  for c in $(pgrep -P "$p" || true); do tree "$c"; done
}
workers() { tree "$root" | tail -n +2; }

# utime+stime of the whole tree, in clock ticks (threads included: io-wq workers too).
cpu_ticks() {
  local sum=0
  for p in $(tree "$root"); do
    [ -r "/proc/$p/stat" ] || continue
    sum=$((sum + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$sum"
}

stop_target() {
  kill "$root" 2>/dev/null || true
  wait "$root" 2>/dev/null || true
}

# wrk's duration unit to milliseconds.
to_ms() { awk '{v=$1; if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0;
                 else if (v ~ /s$/) printf "%.3f", v*1000; else print v}' <<<"$1"; }

run_load() {  # target round
  start_target "$1"
  local before after
  before=$(cpu_ticks)
  wrk -t2 -c50 -d"${seconds}s" --latency -H "Connection: close" http://127.0.0.1:18080/ \
    >"$out/wrk-$1-$2.txt"
  after=$(cpu_ticks)
  stop_target
  local f=$out/wrk-$1-$2.txt
  local reqs rps p50 p99 errs
  reqs=$(awk '/requests in/ {print $1}' "$f")
  rps=$(awk '/Requests\/sec/ {print $2}' "$f")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$f")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$f")")
  errs=$(awk '/Socket errors/ {gsub(",", ""); s += $4 + $6 + $8 + $10} /Non-2xx/ {s += $5}
              END {print s + 0}' "$f")
  local us_per_conn
  us_per_conn=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$reqs" \
    'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$2" "$1" "$rps" "$p50" "$p99" "$us_per_conn" "$errs" |
    tee -a "$out/rounds.tsv"
}

# System calls per connection: strace -c on every process of the target during a short run.
count_syscalls() {
  start_target "$1"
  local args=()
  for p in $(workers); do args+=(-p "$p"); done
  strace -qq -c -f -o "$out/strace-$1.txt" "${args[@]}" &
  local tracer=$!
  sleep 0.5  # strace has no "attached" signal; its attach takes a few ms
  wrk -t1 -c10 -d3s -H "Connection: close" http://127.0.0.1:18080/ >"$out/wrk-strace-$1.txt"
  kill -INT "$tracer"
  wait "$tracer" || true
  stop_target
  local reqs
  reqs=$(awk '/requests in/ {print $1}' "$out/wrk-strace-$1.txt")
  awk -v n="$reqs" -v t="$1" '$NF == "total" {total = $4} /io_uring_enter/ {enter = $4}
    END {printf "%s\tsyscalls/conn %.2f\tio_uring_enter/conn %.2f\n", t, total / n, enter / n}' \
    "$out/strace-$1.txt" | tee -a "$out/syscalls.tsv"
  grep -v '^-\|^%\|total' "$out/strace-$1.txt" | awk -v n="$reqs" -v t="$1" \
    '{printf "  %s %s/conn %.2f\n", t, $NF, $4 / n}' | head -12
}

# The same at full load (wrk -t2 -c50), where strace's slowdown would change the batching:
# perf counts every system call entry of the target's processes with the kernel's tracepoints.
count_syscalls_perf() {
  start_target "$1"
  perf stat -x, -e raw_syscalls:sys_enter -e syscalls:sys_enter_io_uring_enter \
    -p "$(workers | paste -sd,)" -o "$out/perf-$1.txt" -- sleep 4 &
  local counter=$!
  wrk -t2 -c50 -d3s -H "Connection: close" http://127.0.0.1:18080/ >"$out/wrk-perf-$1.txt"
  wait "$counter"
  stop_target
  local reqs
  reqs=$(awk '/requests in/ {print $1}' "$out/wrk-perf-$1.txt")
  awk -F, -v n="$reqs" -v t="$1" '/raw_syscalls:sys_enter/ {all = $1}
    /io_uring_enter/ {enter = $1}
    END {printf "%s\tat -c50: syscalls/conn %.2f\tio_uring_enter/conn %.2f\n", t, all / n,
         enter / n}' "$out/perf-$1.txt" | tee -a "$out/syscalls.tsv"
}

start_nginx
: >"$out/proxy-stderr.log"
echo -e "round\ttarget\treq/s\tp50_ms\tp99_ms\tcpu_us/conn\terrors" | tee "$out/header.tsv"
for ((r = 1; r <= rounds; r++)); do
  order=("${targets[@]}")
  if ((r % 2 == 0)); then
    order=($(printf '%s\n' "${targets[@]}" | tac))
  fi
  for t in "${order[@]}"; do
    run_load "$t" "$r"
  done
done

: >"$out/syscalls.tsv"
for t in "${targets[@]}"; do
  count_syscalls "$t"
  count_syscalls_perf "$t"
done

python3 - "$out/rounds.tsv" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
by = {}
for r, t, rps, p50, p99, cpu, err in rows:
    by.setdefault(t, {})[int(r)] = dict(rps=float(rps), p50=float(p50), p99=float(p99),
                                         cpu=float(cpu), err=int(err))
def med(t, k):
    return statistics.median(v[k] for v in by[t].values())
print("\nmedians per target:")
for t in by:
    print(f"  {t:16} req/s {med(t, 'rps'):9.0f}  p50 {med(t, 'p50'):6.2f} ms  "
          f"p99 {med(t, 'p99'):6.2f} ms  cpu/conn {med(t, 'cpu'):6.2f} us  "
          f"errors {sum(v['err'] for v in by[t].values())}")
print("\nmedian of per-round ratios (target / base):")
uring = ("io_uring", "io_uring-direct-up", "io_uring-direct")
for t, base in [(u, "epoll") for u in uring] + [(u, "weir") for u in uring] + [("epoll", "weir")]:
    if t in by and base in by:
        rounds = sorted(set(by[t]) & set(by[base]))
        ratio = lambda k: statistics.median(by[t][r][k] / by[base][r][k] for r in rounds)
        print(f"  {t:16}/{base:6} cpu/conn {ratio('cpu'):.3f}  req/s {ratio('rps'):.3f}  "
              f"p99 {ratio('p99'):.3f}")
PY
