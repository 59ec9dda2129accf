#!/usr/bin/env bash
# Correctness check of uring-proto, every engine: HTTP responses through an nginx backend (the
# measurement's, started by measure.sh or here), a 4 MiB download compared byte for byte, and
# an echo round trip of 2 MiB with a half-close (the client's FIN must reach the backend and the
# echoed bytes still come back), and a backend that refuses connections. Bounded: every proxy
# exits by itself after 20 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/build/uring-proto
work=/tmp/uring-proto
. "$here/backend.sh"
trap 'stop_all' EXIT

start_nginx
head -c 4194304 /dev/urandom >"$work/big.bin"
want=$(sha256sum <"$work/big.bin" | cut -d' ' -f1)

# A tiny echo backend: reads until EOF, echoes as it goes, then closes.
python3 - <<'PY' &
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 18083)); s.listen(64); s.settimeout(60)
def serve(c):
    with c:
        while (b := c.recv(65536)):
            c.sendall(b)
while True:
    try:
        c, _ = s.accept()
    except socket.timeout:
        break
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
pids+=($!)

echo_check() {  # sends 2 MiB, half-closes, expects the same bytes back then EOF
  python3 - "$1" <<'PY'
import os, socket, sys, threading
data = os.urandom(2 << 20)
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
def send():
    c.sendall(data); c.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send); t.start()
got = bytearray()
while (b := c.recv(65536)):
    got += b
t.join()
sys.exit(0 if bytes(got) == data else 1)
PY
}

fail=0
for engine in epoll io_uring io_uring-direct-up io_uring-direct; do
  "$bin" --listen 127.0.0.1:18080 --backend 127.0.0.1:18081 --engine "$engine" --workers 2 \
    --max-seconds 20 &
  proxy=$!
  "$bin" --listen 127.0.0.1:18084 --backend 127.0.0.1:18083 --engine "$engine" --workers 2 \
    --max-seconds 20 &
  echo_proxy=$!
  wait_port 18080
  wait_port 18084
  ok=0
  for _ in $(seq 100); do
    [ "$(curl -s --max-time 5 http://127.0.0.1:18080/)" = ok ] && ok=$((ok + 1))
  done
  got=$(curl -s --max-time 10 http://127.0.0.1:18080/big | sha256sum | cut -d' ' -f1)
  bulk=$([ "$got" = "$want" ] && echo ok || echo FAIL)
  halfclose=$(echo_check 18084 && echo ok || echo FAIL)
  load=$(wrk -t1 -c20 -d2s -H "Connection: close" http://127.0.0.1:18080/)
  errors=$(grep -c 'Socket errors\|Non-2xx' <<<"$load" || true)
  load=$(grep -o '[0-9]* requests in [0-9.]*s' <<<"$load")
  echo "$engine: 100 GETs ok=$ok, 4 MiB download $bulk, 2 MiB echo+half-close $halfclose," \
    "wrk: $load, error lines: $errors"
  [ "$ok" = 100 ] && [ "$bulk" = ok ] && [ "$halfclose" = ok ] && [ "$errors" = 0 ] || fail=1
  kill "$proxy" "$echo_proxy"
  wait "$proxy" "$echo_proxy" || true

  # A backend that refuses: every connection must end (curl gets an empty reply, status 52, or
  # a reset, 56, when the close finds the unread request) and the proxy must stay up.
  "$bin" --listen 127.0.0.1:18080 --backend 127.0.0.1:18089 --engine "$engine" --workers 1 \
    --max-seconds 20 &
  proxy=$!
  wait_port 18080
  refused=0
  for _ in $(seq 50); do
    rc=0
    curl -s --max-time 5 http://127.0.0.1:18080/ >/dev/null || rc=$?
    [ "$rc" = 52 ] || [ "$rc" = 56 ] && refused=$((refused + 1))
  done
  alive=$(kill -0 "$proxy" 2>/dev/null && echo up || echo DEAD)
  echo "$engine: refused backend: $refused/50 connections closed, proxy $alive"
  [ "$refused" = 50 ] && [ "$alive" = up ] || fail=1
  kill "$proxy"
  wait "$proxy" || true
done
exit $fail
