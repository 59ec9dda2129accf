#!/usr/bin/env bash
# weir's side-by-side benchmark: weir against direct, HAProxy (two splice settings) and nginx
# (stream), all on 127.0.0.1. See tests/bench/README.md.
#
#   tests/bench/run.sh [--quick] [--rounds N] [--workers N] [--out DIR]
#                      [--weir BINARY [--weir-source DIR]] [--targets a,b] [--workloads a,b]
#
# Installs the tools it needs from Debian's packages, builds weir (unless --weir is given),
# raises the open-file limit, then runs the Python driver (tests/bench/weirbench). Exits
# non-zero only when it cannot run; figures never fail it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
build_dir="${WEIR_BENCH_BUILD_DIR:-$top/build-bench}"

die() { echo "run.sh: $*" >&2; exit 1; }

# --- arguments this wrapper needs to see (all of them go on to the driver) -------------------
weir=""
out=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --weir) weir="${args[i + 1]:-}" ;;
    --weir=*) weir="${args[i]#--weir=}" ;;
    --out) out="${args[i + 1]:-}" ;;
    --out=*) out="${args[i]#--out=}" ;;
    -h | --help) PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$here" exec python3 -m weirbench --help ;;
  esac
done

# --- packages ---------------------------------------------------------------------------------
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root (or install sudo): packages may need installing"
  SUDO="sudo"
  echo "run.sh: not root: weir cannot load its BPF steering program and falls back to hash" >&2
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# nghttp2-client gives h2load (HTTP/1.1 and HTTP/2 over TLS), openssl the certificate, strace
# the system calls per connection (workload syscalls).
wanted=(haproxy iperf3 wrk python3 libnginx-mod-stream nghttp2-client openssl strace)
# Any Debian nginx flavour will do; nginx-light is the smallest.
if ! installed nginx-light && ! installed nginx && ! installed nginx-core; then
  wanted+=(nginx-light)
fi
missing=()
for p in "${wanted[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "run.sh: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
for tool in haproxy nginx iperf3 wrk h2load openssl strace; do
  command -v "$tool" >/dev/null || die "$tool is still missing after installing packages"
done
[ -x /usr/bin/python3 ] || die "/usr/bin/python3 is missing after installing python3"

# --- weir -------------------------------------------------------------------------------------
if [ -z "$weir" ]; then
  "$top/packaging/deps.sh"
  echo "run.sh: building weir in $build_dir" >&2
  build_log="$(mktemp)"
  if ! { cmake -S "$top" -B "$build_dir" -DWEIR_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
         cmake --build "$build_dir" -j"$(nproc)" --target weir; } >"$build_log" 2>&1; then
    tail -40 "$build_log" >&2
    die "building weir failed (full log: $build_log)"
  fi
  rm -f "$build_log"
  weir="$build_dir/lb/weir"
  args+=(--weir "$weir" --weir-source "$top")
fi
[ -x "$weir" ] || die "weir binary $weir is not executable"

# --- run --------------------------------------------------------------------------------------
# 5,000 connections held through a proxy take 10,000 descriptors in the proxy.
ulimit -n "$(ulimit -Hn)"

if [ -z "$out" ]; then
  out="/tmp/weir-bench-$(date +%Y%m%d-%H%M%S)"
  args+=(--out "$out")
fi
mkdir -p "$out"

# The driver stops everything it started; this catches what a driver killed outright left
# behind. Each pid in the file leads its own process group (the driver made it so).
cleanup() {
  local pid
  [ -f "$out/pids" ] || return 0
  for pid in $(cat "$out/pids"); do
    if [ -d "/proc/$pid" ]; then
      echo "run.sh: stopping leftover process group $pid" >&2
      kill -TERM -- "-$pid" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" /usr/bin/python3 -m weirbench "${args[@]}"
