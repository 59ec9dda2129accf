"""The workloads. Each run_* function measures one target once and returns a Record; a failure
to measure is an error in the record, never an exception."""

import os
import tempfile
import time
from dataclasses import dataclass, field

from . import clients, configs, procfs, syscalls

UPSTREAM_WAIT = 30.0   # seconds to wait for held connections to show up at the far side


@dataclass
class Settings:
    rounds: int
    workers: int
    bulk_seconds: int
    http_seconds: int
    wrk_threads: int
    wrk_connections: int
    idle_conns: int
    even_conns: int
    tls_seconds: int
    tls_clients: int     # tlsclient.py processes for the full-handshake workloads
    h2_streams: int      # concurrent streams per HTTP/2 connection
    syscall_seconds: int       # wrk -d while strace counts the workers' system calls
    syscall_connections: int   # wrk -c (one thread) meanwhile


@dataclass
class Record:
    metrics: dict = field(default_factory=dict)   # name -> number (absent = not measured)
    errors: list = field(default_factory=list)    # sentences; every one shows in the tables
    raw: dict = field(default_factory=dict)       # everything else worth keeping in the JSON
    not_applicable: bool = False


def _cpu_delta(before, after):
    if before is None or after is None:
        return None
    return after - before


def run_bulk(target, backends, s, streams):
    rec = Record()
    cpu0 = target.cpu_seconds()
    result, err = clients.iperf3(target.ports["bulk"], s.bulk_seconds, streams)
    cpu = _cpu_delta(cpu0, target.cpu_seconds())
    if err:
        rec.errors.append(err)
        backends.restart_iperf()  # so a wedged server does not fail the next target too
    if result:
        rec.raw.update(result, proxy_cpu_s=cpu)
        rec.metrics["gbps"] = result["bits_per_second"] / 1e9
        if cpu is not None and result["bytes"] > 0:
            rec.metrics["cpu_ms_per_gb"] = cpu * 1000 / (result["bytes"] / 1e9)
    return rec


def run_http(target, s, close):
    rec = Record()
    cpu0 = target.cpu_seconds()
    result, err = clients.wrk(target.ports["http"], s.http_seconds, s.wrk_threads,
                              s.wrk_connections, close)
    cpu = _cpu_delta(cpu0, target.cpu_seconds())
    if err:
        rec.errors.append(err)
        return rec
    rec.raw.update(result, proxy_cpu_s=cpu)
    rec.metrics["rps"] = result["requests_per_second"]
    for key in ("p50_ms", "p99_ms", "p999_ms"):
        if result[key] is not None:
            rec.metrics[key] = result[key]
    if cpu is not None and result["requests"] > 0:
        rec.metrics["cpu_us_per_req"] = cpu * 1e6 / result["requests"]
    _wrk_errors(rec, result)
    return rec


def _wrk_errors(rec, result):
    socket_errors = {k: v for k, v in result["socket_errors"].items() if v}
    if socket_errors:
        rec.errors.append("wrk socket errors: "
                          + ", ".join(f"{k} {v}" for k, v in socket_errors.items()))
    if result["non_2xx"]:
        rec.errors.append(f"wrk non-2xx/3xx responses: {result['non_2xx']}")
    if result["requests"] == 0:
        rec.errors.append("wrk completed no request")


def run_syscalls(target, s):
    """System calls per proxied short connection: strace -c -f on the proxy's workers while
    wrk -t1 sends Connection: close requests for s.syscall_seconds. strace makes the proxy
    many times slower, so nothing timed is measured here."""
    rec = Record()
    if target.name == "direct":
        rec.not_applicable = True
        return rec
    pids = _workers(target)
    if not pids:
        rec.errors.append("no worker process found")
        return rec
    fd, summary = tempfile.mkstemp(prefix="strace-", suffix=".txt", dir=target.dir)
    os.close(fd)
    counts, run, err = syscalls.count(
        pids, summary, os.path.join(target.dir, "strace.log"), target.pid_file,
        lambda: clients.wrk(target.ports["http"], s.syscall_seconds, 1, s.syscall_connections,
                            close=True))
    if err:
        rec.errors.append(err)
    if run is None:
        return rec
    result, err = run
    if err:
        rec.errors.append(err)
        return rec
    requests = result["requests"]
    rec.raw.update(requests=requests, requests_per_second=result["requests_per_second"],
                   socket_errors=result["socket_errors"], non_2xx=result["non_2xx"],
                   traced_pids=pids, strace_summary=summary, calls=counts)
    rec.metrics["traced_rps"] = result["requests_per_second"]
    _wrk_errors(rec, result)
    if counts is not None and requests > 0:
        rec.metrics["syscalls_per_conn"] = sum(c for c, _ in counts.values()) / requests
        rec.metrics["failed_per_conn"] = sum(e for _, e in counts.values()) / requests
    return rec


def _tls_not_applicable(target):
    rec = Record()
    rec.not_applicable = target.tls is None
    return rec


def run_tls_handshakes(target, s, service):
    """New TLS connections per second, each a full handshake plus one request with Connection:
    close: service "tls-h1" (the proxy terminates) or "tls-pass" (the proxy routes by SNI and
    the backend terminates)."""
    rec = _tls_not_applicable(target)
    if rec.not_applicable:
        return rec
    cpu0 = target.cpu_seconds()
    result, err = clients.tls_handshakes(target.ports[service], configs.TLS_SNI, s.tls_seconds,
                                         s.tls_clients, target.tls.client_conf)
    cpu = _cpu_delta(cpu0, target.cpu_seconds())
    if err:
        rec.errors.append(err)
    if not result:
        return rec
    rec.raw.update(result, proxy_cpu_s=cpu)
    n = result["connections"]
    rec.metrics["cps"] = result["connections_per_second"]
    for key in ("p50_ms", "p99_ms", "p999_ms"):
        if result[key] is not None:
            rec.metrics[key] = result[key]
    if n:
        if cpu is not None:
            rec.metrics["cpu_us_per_conn"] = cpu * 1e6 / n
        rec.metrics["client_cpu_us_per_conn"] = result["client_cpu_s"] * 1e6 / n
    else:
        rec.errors.append("no connection completed")
    if result["reused"]:
        rec.errors.append(f"{result['reused']} of {n} connections resumed a session "
                          f"(these must be full handshakes)")
    if result["errors"]:
        rec.errors.append("TLS client errors: " + _failures_text(result["errors"]))
    if n and result["protocol"] != "TLSv1.3":
        rec.errors.append(f"negotiated {result['protocol']}, not TLSv1.3")
    if n and result["cipher"] != configs.TLS_CLIENT_SUITE:
        rec.errors.append(f"negotiated {result['cipher']}, not {configs.TLS_CLIENT_SUITE}")
    return rec


def run_tls_requests(target, s, h2):
    """Keep-alive requests per second over TLS through the terminating service: HTTP/1.1
    (tls-h1) or HTTP/2 (tls-h2, s.h2_streams streams per connection)."""
    rec = _tls_not_applicable(target)
    if rec.not_applicable:
        return rec
    service = "tls-h2" if h2 else "tls-h1"
    cpu0 = target.cpu_seconds()
    result, err = clients.h2load(target.ports[service], configs.TLS_SNI, s.tls_seconds,
                                 s.wrk_threads, s.wrk_connections, h2, s.h2_streams)
    cpu = _cpu_delta(cpu0, target.cpu_seconds())
    if err:
        rec.errors.append(err)
        return rec
    rec.raw.update(result, proxy_cpu_s=cpu)
    rec.metrics["rps"] = result["requests_per_second"]
    for key in ("min_ms", "mean_ms", "sd_ms", "max_ms"):  # all h2load says of request times
        if result[key] is not None:
            rec.metrics[key] = result[key]
    if cpu is not None and result["requests"] > 0:
        rec.metrics["cpu_us_per_req"] = cpu * 1e6 / result["requests"]
    _h2load_errors(rec, result, "h2" if h2 else "http/1.1")
    return rec


def run_tls_bulk(target, s):
    """Throughput of one TLS connection through the terminating service (tls-h1), fetching
    the backend's large file over and over."""
    rec = _tls_not_applicable(target)
    if rec.not_applicable:
        return rec
    cpu0 = target.cpu_seconds()
    result, err = clients.h2load(target.ports["tls-h1"], configs.TLS_SNI, s.tls_seconds, 1, 1,
                                 False, path=configs.BULK_PATH)
    cpu = _cpu_delta(cpu0, target.cpu_seconds())
    if err:
        rec.errors.append(err)
        return rec
    rec.raw.update(result, proxy_cpu_s=cpu)
    if result["seconds"] > 0:
        rec.metrics["gbps"] = result["bytes"] * 8 / result["seconds"] / 1e9
    if cpu is not None and result["bytes"] > 0:
        rec.metrics["cpu_ms_per_gb"] = cpu * 1000 / (result["bytes"] / 1e9)
    _h2load_errors(rec, result, "http/1.1")
    return rec


def _h2load_errors(rec, result, alpn):
    if result["failed"]:
        rec.errors.append(f"h2load: {result['failed']} requests failed")
    if result["non_2xx"]:
        rec.errors.append(f"h2load: {result['non_2xx']} non-2xx responses")
    if result["requests"] == 0 and result["bytes"] == 0:
        rec.errors.append("h2load completed no request")
    if result["protocol"] != "TLSv1.3":
        rec.errors.append(f"negotiated {result['protocol']}, not TLSv1.3")
    if result["alpn"] != alpn:
        rec.errors.append(f"ALPN {result['alpn']}, not {alpn}")


def _wait_until(predicate, timeout):
    stop_at = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= stop_at:
            return False
        time.sleep(0.2)
    return True


def _failures_text(failures):
    return ", ".join(f"{reason} x{n}" for reason, n in sorted(failures.items()))


def run_idle(target, backends, s):
    """RSS of the proxy's processes, fresh, then holding s.idle_conns idle connections (once
    just opened, once more after one request/response on each)."""
    rec = Record()
    if target.name == "direct":
        rec.not_applicable = True
        return rec
    status = target.stop()
    if status not in (None, "exit status 0", "killed by signal 15"):
        rec.errors.append(f"{target.name} stopped for a fresh start with {status}")
    err = target.ensure_started()  # a fresh process: no pools or arenas grown earlier
    if err:
        rec.errors.append(err)
        return rec
    time.sleep(1.0)
    rss0 = target.rss_kib()
    backend_port = backends.ports["http"]
    base = procfs.established_at(backend_port)
    with clients.IdleConnections(target.ports["http"]) as conns:
        held = conns.open(s.idle_conns)
        reached = _wait_until(lambda: procfs.established_at(backend_port) - base >= held,
                              UPSTREAM_WAIT)
        upstream = procfs.established_at(backend_port) - base
        if not reached:
            rec.errors.append(f"only {upstream} of {held} held connections reached the backend")
        time.sleep(1.0)
        rss1 = target.rss_kib()
        answered = conns.request_each()
        time.sleep(0.5)
        rss2 = target.rss_kib()
        if conns.failures:
            rec.errors.append("idle connections: " + _failures_text(conns.failures))
    rec.raw.update(rss_before_kib=rss0, rss_opened_kib=rss1, rss_after_request_kib=rss2,
                   wanted=s.idle_conns, held=held, upstream=upstream, answered=answered)
    if held and None not in (rss0, rss1, rss2):
        rec.metrics["baseline_mib"] = rss0 / 1024
        rec.metrics["held_mib"] = rss2 / 1024
        rec.metrics["kib_per_conn"] = (rss1 - rss0) / held
        rec.metrics["kib_per_conn_after_req"] = (rss2 - rss0) / held
    return rec


def _workers(target):
    """The processes of target that serve connections: the children holding a listening
    socket of its HTTP port (not, say, a checker), or all of worker_pids() if none does;
    HAProxy's one process (its threads are in it)."""
    port = target.ports["http"]
    listeners = {inode for lp, _, st, inode in procfs.tcp_sockets()
                 if lp == port and st == procfs.TCP_LISTEN}
    workers = [p for p in target.worker_pids() if procfs.socket_inodes(p) & listeners]
    return workers or target.worker_pids()


def run_evenness(target, s):
    """How the connections the proxy accepted are spread over its worker processes."""
    rec = Record()
    if not target.has_worker_processes:
        rec.not_applicable = True
        return rec
    port = target.ports["http"]
    workers = _workers(target)
    if not workers:
        rec.errors.append("no worker process found")
        return rec
    with clients.IdleConnections(port) as conns:
        held = conns.open(s.even_conns)
        counts = {}

        def all_accepted():
            counts.update(procfs.accepted_per_process(workers, port))
            return sum(counts.values()) >= held

        if not _wait_until(all_accepted, UPSTREAM_WAIT):
            rec.errors.append(f"workers accepted {sum(counts.values())} of {held} connections")
        if conns.failures:
            rec.errors.append("connections: " + _failures_text(conns.failures))
    per_worker = [counts.get(p, 0) for p in workers]
    rec.raw.update(held=held, per_worker=per_worker, worker_pids=workers)
    total = sum(per_worker)
    if total:
        mean = total / len(per_worker)
        rec.metrics["busiest_pct"] = (max(per_worker) / mean - 1) * 100
    return rec
