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
    flood_in_flight: int = 256       # denied-flood: connects pending at once
    flood_rate: int = 0              # attempts per second; 0 = as fast as it can
    flood_max_attempts: int = 5000000


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


def run_denied_flood(target, s, rnd, flood_binary):
    """Allowed short connections (wrk from 127.0.0.1, Connection: close) through the `acl`
    service, alone and then with a flood of connection attempts from configs.DENIED_SOURCE
    (the address its access list refuses) running meanwhile; in the 2nd, 4th... round the
    flood run comes first, so that a machine speeding up or slowing down within a round does
    not favour either. Reports both req/s and p99, their ratio, the proxy's CPU per allowed
    request with / alone, and what became of the flood."""
    rec = Record()
    if not target.acl:
        rec.not_applicable = True
        return rec
    problem = target.acl_problem()
    if problem:
        rec.errors.append(problem)
    port = target.ports["acl"]
    phases = ("alone", "flood") if rnd % 2 == 0 else ("flood", "alone")
    for phase in phases:
        flood = None
        if phase == "flood":
            # Started first and ending after wrk: the flood covers the whole of wrk's run.
            flood = clients.Flood(flood_binary, configs.DENIED_SOURCE, port, s.http_seconds + 1,
                                  s.flood_in_flight, s.flood_rate, s.flood_max_attempts)
        denied0 = target.denied_count()
        cpu0 = target.cpu_seconds()
        try:
            if flood:
                err = flood.start()
                if err:
                    rec.errors.append(err)
                    continue
            result, err = clients.wrk(port, s.http_seconds, s.wrk_threads, s.wrk_connections,
                                      close=True)
            counts, flood_err = flood.finish() if flood else (None, None)
        finally:
            if flood:
                flood.kill()
        cpu = _cpu_delta(cpu0, target.cpu_seconds())
        denied1 = target.denied_count()
        if flood_err:
            rec.errors.append(flood_err)
        if counts:
            rec.raw["flood_counts"] = counts
            _flood_figures(rec, counts)
            if None not in (denied0, denied1):
                rec.raw["proxy_denied"] = denied1 - denied0
                if counts["attempts"]:
                    rec.metrics["proxy_refused_pct"] = (100 * (denied1 - denied0)
                                                        / counts["attempts"])
        if err:
            rec.errors.append(f"{phase}: {err}")
            continue
        rec.raw[f"wrk_{phase}"] = dict(result, proxy_cpu_s=cpu)
        rec.metrics[f"rps_{phase}"] = result["requests_per_second"]
        if result["p99_ms"] is not None:
            rec.metrics[f"p99_{phase}_ms"] = result["p99_ms"]
        if cpu is not None and result["requests"] > 0:
            rec.raw[f"wrk_{phase}"]["cpu_us_per_req"] = cpu * 1e6 / result["requests"]
        sub = Record()
        _wrk_errors(sub, result)
        rec.errors += [f"{phase}: {e}" for e in sub.errors]
    if rec.metrics.get("rps_alone") and "rps_flood" in rec.metrics:
        rec.metrics["flood_ratio"] = rec.metrics["rps_flood"] / rec.metrics["rps_alone"]
    # The proxy's CPU per allowed request, with the flood / alone: what refusing costs it.
    per_req = [rec.raw.get(f"wrk_{p}", {}).get("cpu_us_per_req") for p in ("alone", "flood")]
    if None not in per_req and per_req[0] > 0:
        rec.metrics["cpu_ratio"] = per_req[1] / per_req[0]
    return rec


def _flood_figures(rec, counts):
    """The flood's own figures: attempts per second, and what share of them a RST answered at
    the SYN (refused in the kernel: no process ever saw them)."""
    attempts = counts["attempts"]
    if counts["opening_seconds"] > 0:
        rec.metrics["flood_per_s"] = attempts / counts["opening_seconds"]
    if attempts:
        rec.metrics["rst_at_syn_pct"] = 100 * counts["refused"] / attempts
    if not attempts:
        rec.errors.append("the flood made no attempt")
    odd = {k: v for k, v in counts["errors"].items() if v}
    if odd:
        rec.errors.append("flood errors: " + _failures_text(odd))
