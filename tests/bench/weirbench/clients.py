"""The load generators: iperf3 (bulk), wrk (HTTP requests), h2load (HTTP/1.1 and HTTP/2 over
TLS), tlsclient.py (full TLS handshakes) and a holder of many idle connections. Every run is
bounded in time; every failure comes back as text, never raised."""

import errno
import json
import os
import re
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import time

from .processes import die_with_parent

HOST = "127.0.0.1"


def iperf3(port, seconds, streams):
    """One iperf3 client run (client sends). Returns (result dict or None, error text or None).
    The result has bits_per_second and bytes as the receiver counted them."""
    argv = ["iperf3", "-c", HOST, "-p", str(port), "-t", str(seconds), "-P", str(streams),
            "-J", "--connect-timeout", "3000"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 20,
                              preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        return None, f"iperf3 did not finish within {seconds + 20} s"
    try:
        report = json.loads(done.stdout)
    except ValueError:
        tail = (done.stderr or done.stdout).strip()[-200:]
        return None, f"iperf3 exit {done.returncode}, no JSON: {tail}"
    if "error" in report:
        return None, f"iperf3: {report['error']}"
    try:
        received = report["end"]["sum_received"]
        sent = report["end"]["sum_sent"]
    except KeyError:
        return None, "iperf3 JSON has no end.sum_received"
    if done.returncode != 0:
        return None, f"iperf3 exit {done.returncode}"
    return {
        "bits_per_second": received["bits_per_second"],
        "bytes": received["bytes"],
        "seconds": received["seconds"],
        "retransmits": sent.get("retransmits"),
    }, None


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _duration_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * _UNITS_MS[m.group(2)] if m else None


_HERE = os.path.dirname(os.path.abspath(__file__))
_PERCENTILES_LUA = os.path.join(_HERE, "percentiles.lua")
_LATENCY_KEYS = ("p50_ms", "p99_ms", "p999_ms", "max_ms")


def wrk_latencies(out):
    """{p50_ms, p99_ms, p999_ms, max_ms} from the line percentiles.lua adds to wrk's output
    (all None when no request completed), or None when the line is missing."""
    m = re.search(r"^weirbench-latency-us p50=(\d+) p99=(\d+) p99\.9=(\d+) max=(\d+) "
                  r"requests=(\d+)$", out, re.M)
    if not m:
        return None
    if int(m.group(5)) == 0:
        return dict.fromkeys(_LATENCY_KEYS)
    return {key: int(us) / 1000 for key, us in zip(_LATENCY_KEYS, m.groups())}


def wrk(port, seconds, threads, connections, close):
    """One wrk run against http://127.0.0.1:port/. close=True sends "Connection: close", so
    every request is a new TCP connection. Returns (result dict or None, error text or None);
    the result holds requests, requests_per_second, p50_ms, p99_ms, p999_ms, max_ms (wrk's
    request latency, from percentiles.lua), socket_errors (dict) and non_2xx, and is returned
    even when some requests failed (those are in the counts)."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
            "-s", _PERCENTILES_LUA]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://{HOST}:{port}/")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 20,
                              preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        return None, f"wrk did not finish within {seconds + 20} s"
    out = done.stdout
    result = {"socket_errors": {}, "non_2xx": 0}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(\w+)", out, re.M)
    rps = re.search(r"^Requests/sec:\s*([0-9.]+)", out, re.M)
    if done.returncode != 0 or not m or not rps:
        tail = (done.stderr or out).strip()[-200:]
        return None, f"wrk exit {done.returncode}: {tail}"
    latencies = wrk_latencies(out)
    if latencies is None:
        return None, f"wrk printed no percentiles line (from {_PERCENTILES_LUA}): " \
                     f"{(done.stderr or out).strip()[-200:]}"
    result["requests"] = int(m.group(1))
    result["requests_per_second"] = float(rps.group(1))
    result.update(latencies)
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if e:
        result["socket_errors"] = {k: int(v) for k, v in
                                   zip(("connect", "read", "write", "timeout"), e.groups())}
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if n:
        result["non_2xx"] = int(n.group(1))
    return result, None


def h2load(port, sni, seconds, threads, connections, h2, streams=1, path="/"):
    """One h2load run against https://SNI/PATH, connecting to 127.0.0.1:port (so the TLS SNI
    is a name, not an address). h2=False speaks HTTP/1.1 (ALPN http/1.1), h2=True HTTP/2 with
    `streams` concurrent streams per connection. Every connection is kept alive for the whole
    run: how h2load starts its sessions (it resumes when it reconnects) hardly matters here.
    Returns (result dict or None, error text or None); the result holds requests,
    requests_per_second, bytes (all traffic received), seconds, mean_ms (time for request),
    failed (failed + errored + timed out), non_2xx, protocol and alpn, and h2load's
    `time for request` figures (all it gives: min_ms, max_ms, mean_ms, sd_ms; no
    percentiles)."""
    argv = ["h2load", f"-t{threads}", f"-c{connections}", f"-D{seconds}",
            "--connect-to", f"{HOST}:{port}"]
    argv += ["-m", str(streams)] if h2 else ["--h1"]
    argv.append(f"https://{sni}{path}")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 20,
                              preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        return None, f"h2load did not finish within {seconds + 20} s"
    out = done.stdout
    fin = re.search(r"^finished in ([0-9.]+)s, ([0-9.]+) req/s", out, re.M)
    req = re.search(r"^requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", out, re.M)
    codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out, re.M)
    traffic = re.search(r"^traffic: \S+ \((\d+)\) total", out, re.M)
    if done.returncode != 0 or not (fin and req and codes and traffic):
        tail = (done.stderr or out).strip()[-200:]
        return None, f"h2load exit {done.returncode}: {tail}"
    times = re.search(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    proto = re.search(r"^TLS Protocol: (\S+)", out, re.M)
    alpn = re.search(r"^Application protocol: (\S+)", out, re.M)
    return {
        "requests": int(req.group(3)),
        "requests_per_second": float(fin.group(2)),
        "seconds": float(fin.group(1)),
        "bytes": int(traffic.group(1)),
        **{key: _duration_ms(times.group(i + 1)) if times else None
           for i, key in enumerate(("min_ms", "max_ms", "mean_ms", "sd_ms"))},
        "failed": sum(int(x) for x in req.group(4, 5, 6)),
        "non_2xx": sum(int(x) for x in codes.group(2, 3, 4)),
        "protocol": proto.group(1) if proto else None,
        "alpn": alpn.group(1) if alpn else None,
    }, None


_TLSCLIENT = os.path.join(_HERE, "tlsclient.py")


def percentile(ordered, pct):
    """The pct-th percentile of an ascending list: the value at rank floor(pct% of (n - 1))
    (so p99.9 of fewer than 1,000 values is one of the slowest two), or None if it is empty."""
    return ordered[int(pct / 100 * (len(ordered) - 1))] if ordered else None


def tls_handshakes(port, sni, seconds, processes, openssl_conf):
    """Full TLS handshakes, one HTTP request each with Connection: close, from `processes`
    tlsclient.py processes side by side (each one connection at a time), with OpenSSL
    configured by the file openssl_conf. Returns (result dict or None, error text or None); the
    result holds connections, connections_per_second, reused (must be 0), errors (dict),
    p50_ms, p99_ms, p999_ms, max_ms (of the whole connection), client_cpu_s, protocol and
    cipher."""
    argv = [sys.executable, _TLSCLIENT, str(port), sni, str(seconds)]
    env = dict(os.environ, OPENSSL_CONF=openssl_conf)
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, preexec_fn=die_with_parent) for _ in range(processes)]
    reports, problems = [], []
    deadline = time.monotonic() + seconds + 20
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            problems.append(f"a TLS client did not finish within {seconds + 20} s")
            continue
        try:
            reports.append(json.loads(out))
        except ValueError:
            problems.append(f"TLS client exit {p.returncode}: {err.strip()[-200:]}")
    if not reports:
        return None, "; ".join(problems) or "no TLS client ran"
    latencies = sorted(x for r in reports for x in r["latencies_ms"])
    errors = {}
    for r in reports:
        for kind, n in r["errors"].items():
            errors[kind] = errors.get(kind, 0) + n
    connections = sum(r["connections"] for r in reports)
    wall = max(r["seconds"] for r in reports)
    return {
        "connections": connections,
        "connections_per_second": connections / wall if wall > 0 else 0.0,
        "reused": sum(r["reused"] for r in reports),
        "errors": errors,
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": percentile(latencies, 99),
        "p999_ms": percentile(latencies, 99.9),
        "max_ms": latencies[-1] if latencies else None,
        "client_cpu_s": sum(r["client_cpu_s"] for r in reports),
        "processes": len(reports),
        "protocol": next((r["protocol"] for r in reports if r["protocol"]), None),
        "cipher": next((r["cipher"] for r in reports if r["cipher"]), None),
    }, ("; ".join(problems) or None)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class IdleConnections:
    """Holds many TCP connections to one port, opened in bursts of `batch` non-blocking
    connects. Use as a context manager: leaving it closes every socket."""

    REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"

    def __init__(self, port):
        self.port = port
        self.socks = []
        self.failures = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []

    def _fail(self, reason, n=1):
        self.failures[reason] = self.failures.get(reason, 0) + n

    def open(self, count, deadline_s=30.0, batch=200):
        """Opens count connections; returns how many are established. Each failure is counted
        in self.failures by reason."""
        stop_at = time.monotonic() + deadline_s
        sel = selectors.DefaultSelector()
        try:
            remaining = count
            while remaining > 0 and time.monotonic() < stop_at:
                pending = []
                for _ in range(min(batch, remaining)):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setblocking(False)
                    err = s.connect_ex((HOST, self.port))
                    if err not in (0, errno.EINPROGRESS):
                        self._fail(errno.errorcode.get(err, str(err)))
                        s.close()
                        continue
                    pending.append(s)
                    sel.register(s, selectors.EVENT_WRITE)
                remaining -= min(batch, remaining)
                while pending and time.monotonic() < stop_at:
                    for key, _ in sel.select(timeout=max(0.0, stop_at - time.monotonic())):
                        s = key.fileobj
                        sel.unregister(s)
                        pending.remove(s)
                        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            self._fail(errno.errorcode.get(err, str(err)))
                            s.close()
                        else:
                            self.socks.append(s)
                for s in pending:
                    sel.unregister(s)
                    s.close()
                    self._fail("connect timed out")
            if remaining > 0:
                self._fail("not attempted (deadline)", remaining)
        finally:
            sel.close()
        return len(self.socks)

    def request_each(self, deadline_s=30.0):
        """Sends one HTTP request on every held connection and reads the whole response
        (status line, headers, Content-Length body). Returns how many got a 200."""
        stop_at = time.monotonic() + deadline_s
        sel = selectors.DefaultSelector()
        buffers = {}
        ok = 0
        try:
            for s in self.socks:
                try:
                    s.send(self.REQUEST)  # 31 bytes always fit in an empty send buffer
                except OSError as e:
                    self._fail(f"request send: {errno.errorcode.get(e.errno, e)}")
                    continue
                buffers[s] = b""
                sel.register(s, selectors.EVENT_READ)
            while buffers and time.monotonic() < stop_at:
                for key, _ in sel.select(timeout=max(0.0, stop_at - time.monotonic())):
                    s = key.fileobj
                    try:
                        data = s.recv(4096)
                    except BlockingIOError:
                        continue
                    except OSError as e:
                        data, reason = b"", f"response: {errno.errorcode.get(e.errno, e)}"
                    else:
                        reason = "response: connection closed"
                    if not data:
                        self._fail(reason)
                        sel.unregister(s)
                        del buffers[s]
                        continue
                    buffers[s] += data
                    status = _complete_response(buffers[s])
                    if status is not None:
                        sel.unregister(s)
                        del buffers[s]
                        if status == 200:
                            ok += 1
                        else:
                            self._fail(f"response: HTTP {status}")
            if buffers:
                self._fail("response timed out", len(buffers))
        finally:
            sel.close()
        return ok


def _complete_response(data):
    """HTTP status of a complete response in data, or None if more bytes are needed."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    if m and len(body) < int(m.group(1)):
        return None
    try:
        return int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return -1


class Flood:
    """The flood tool (flood.c, built by the driver) run beside a load: connection attempts
    from `source` to 127.0.0.1:port for `seconds`, at most `in_flight` pending at once and
    `max_attempts` in all, at `rate` per second (0: as fast as it can). Bounded by itself in
    time and count; killed if it outlives that by 10 s."""

    def __init__(self, binary, source, port, seconds, in_flight, rate, max_attempts):
        self.argv = [binary, source, HOST, str(port), str(seconds), str(max_attempts),
                     str(in_flight), str(rate)]
        self.seconds = seconds
        self.proc = None

    def start(self, timeout=5.0):
        """Starts it and waits until its first attempt is under way. Returns None, or why it
        did not start (then it is no longer running)."""
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     preexec_fn=die_with_parent)
        sel = selectors.DefaultSelector()
        try:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            ready = sel.select(timeout)
        finally:
            sel.close()
        line = self.proc.stdout.readline() if ready else b""
        if line.strip() != b"flooding":
            self.kill()
            return f"flood did not start within {timeout:.0f} s: {line.decode(errors='replace')}"
        return None

    def finish(self):
        """Waits for it to end by itself. Returns (counts dict or None, error text or None):
        attempts, refused (RST to the SYN), established (then reset by the flood), reset (by
        the server before the flood looked), timed_out (no answer within 1 s), unfinished,
        errors (by errno name), seconds, opening_seconds (the time over which attempts were
        started) and cpu_seconds (the flood's own, kernel time included)."""
        try:
            out, err = self.proc.communicate(timeout=self.seconds + 10)
        except subprocess.TimeoutExpired:
            self.kill()
            return None, f"flood did not end within {self.seconds + 10} s"
        try:
            return json.loads(out.decode().strip().splitlines()[-1]), None
        except (ValueError, IndexError):
            return None, (f"flood exit {self.proc.returncode}: "
                          f"{err.decode(errors='replace').strip()[-200:]}")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
