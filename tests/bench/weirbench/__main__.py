"""Driver: python3 -m weirbench --weir BINARY [--quick] [--rounds N] [--workers N] [--out DIR]

Starts the backends and every target, runs each workload on each target once per round
(targets rotated each round so that drift of the machine cancels out), then prints the tables
and writes results.json and report.md to the output directory. Exits non-zero only when it
cannot run at all; bad figures, errors and crashes of a target go into the tables.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback

from . import clients, configs, procfs, report, workloads
from .targets import Backends, Direct, HAProxy, Nginx, StartError, Weir

TLS_WORKLOADS = [w for w in report.WORKLOADS if w.startswith("tls-")]

ALL_TARGETS = ["direct", "haproxy-spliceauto", "haproxy-splice", "nginx", "weir"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="run.sh", description=__doc__.split("\n\n")[1])
    p.add_argument("--weir", metavar="BINARY",
                   help="weir binary to benchmark (run.sh builds one if this is not given)")
    p.add_argument("--weir-source", metavar="DIR",
                   help="source tree the weir binary was built from (for the report)")
    p.add_argument("--baseline", metavar="BINARY",
                   help="a second weir binary, measured as target weir-baseline in the same "
                        "rounds (A/B of a change, interleaved like every other target)")
    p.add_argument("--weir-engine", choices=["epoll", "io_uring"],
                   help="global.event_engine of target weir (default: weir's own default)")
    p.add_argument("--baseline-engine", choices=["epoll", "io_uring"],
                   help="global.event_engine of target weir-baseline; with --baseline set to "
                        "the --weir binary, this A/Bs the engines of one build")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 1 round, 2 s runs (TLS: 1 s), 500 held connections")
    p.add_argument("--rounds", type=int, help="rounds (default 3; --quick: 1)")
    p.add_argument("--workers", type=int, default=2,
                   help="workers (weir, nginx) / threads (HAProxy) per proxy (default 2)")
    p.add_argument("--out", help="output directory (default /tmp/weir-bench-<timestamp>)")
    p.add_argument("--targets", default=",".join(ALL_TARGETS),
                   help=f"comma-separated subset of {','.join(ALL_TARGETS)}")
    p.add_argument("--workloads", default=",".join(report.WORKLOADS),
                   help=f"comma-separated subset of {','.join(report.WORKLOADS)}")
    p.add_argument("--flood-rate", type=int, default=0, metavar="N",
                   help="denied-flood: connection attempts per second of the flood (default 0: "
                        "as fast as it can)")
    args = p.parse_args(argv)
    if not args.weir:
        p.error("--weir BINARY is required (run.sh builds weir and passes it)")
    args.targets = [t for t in args.targets.split(",") if t]
    if args.baseline and "weir-baseline" not in args.targets:
        args.targets.append("weir-baseline")
    args.workloads = [w for w in args.workloads.split(",") if w]
    # Targets start in their own directories: a relative path would name nothing there.
    for opt in ("weir", "baseline"):
        path = getattr(args, opt)
        if path:
            if not os.access(path, os.X_OK):
                p.error(f"--{opt} {path}: not an executable file")
            setattr(args, opt, os.path.abspath(path))
    if "weir-baseline" in args.targets and not args.baseline:
        p.error("target weir-baseline needs --baseline BINARY")
    for name, chosen, allowed in (("target", args.targets, ALL_TARGETS + ["weir-baseline"]),
                                  ("workload", args.workloads, list(report.WORKLOADS))):
        bad = [x for x in chosen if x not in allowed]
        if bad or not chosen:
            p.error(f"unknown {name}(s) {bad}; choose from {','.join(allowed)}")
    if args.flood_rate < 0:
        p.error("--flood-rate must be at least 0")
    if args.rounds is not None and args.rounds < 1 or args.workers < 1:
        p.error("--rounds and --workers must be at least 1")
    return args


def settings_from(args):
    if args.quick:
        return workloads.Settings(rounds=args.rounds or 1, workers=args.workers, bulk_seconds=2,
                                  http_seconds=2, wrk_threads=2, wrk_connections=50,
                                  idle_conns=500, even_conns=500, tls_seconds=1, tls_clients=4,
                                  h2_streams=10, syscall_seconds=3, syscall_connections=10,
                                  flood_rate=args.flood_rate)
    return workloads.Settings(rounds=args.rounds or 3, workers=args.workers, bulk_seconds=5,
                              http_seconds=5, wrk_threads=2, wrk_connections=50,
                              idle_conns=5000, even_conns=2000, tls_seconds=5, tls_clients=8,
                              h2_streams=10, syscall_seconds=3, syscall_connections=10,
                              flood_rate=args.flood_rate)


def preflight(args, s):
    """Everything that would make the run impossible, found before anything starts."""
    problems = []
    tools = ["iperf3", "wrk", "nginx", "haproxy"]
    if "syscalls" in args.workloads:
        tools.append("strace")
    if uses_tls(args):
        tools += ["h2load", "openssl"]
    if "denied-flood" in args.workloads:
        tools.append("cc")  # builds the flood tool
    for tool in tools:
        if not shutil.which(tool):
            problems.append(f"{tool} is not installed (run.sh installs it)")
    if not os.path.exists(configs.NGINX_STREAM_MODULE):
        problems.append(f"{configs.NGINX_STREAM_MODULE} is missing (package libnginx-mod-stream)")
    if not os.access(args.weir, os.X_OK):
        problems.append(f"weir binary {args.weir} is not executable")
    limit = clients.raise_fd_limit()
    need = max(s.idle_conns, s.even_conns) * 2 + 200
    if limit < need:
        problems.append(f"open-file limit is {limit}; holding {s.idle_conns} connections "
                        f"through a proxy needs about {need} (raise the hard limit)")
    if problems:
        sys.exit("weir bench cannot run:\n  " + "\n  ".join(problems))


def uses_tls(args):
    return any(w in TLS_WORKLOADS for w in args.workloads)


FLOOD_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flood.c")


def build_flood(out):
    """Compiles flood.c into OUT/tools/flood with the system's cc. Raises StartError if that
    fails."""
    d = os.path.join(out, "tools")
    os.makedirs(d, exist_ok=True)
    binary = os.path.join(d, "flood")
    done = subprocess.run(["cc", "-O2", "-Wall", "-o", binary, FLOOD_SOURCE],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise StartError(f"cc could not build {FLOOD_SOURCE}: {done.stderr.strip()[-500:]}")
    return binary


def make_certificate(out):
    """One ECDSA P-256 self-signed certificate for TLS_SNI, made with the openssl CLI, used by
    the backend and every proxy. Raises StartError if openssl fails."""
    d = os.path.join(out, "tls")
    os.makedirs(d, exist_ok=True)
    tls = configs.TlsFiles(cert=os.path.join(d, "cert.pem"), key=os.path.join(d, "key.pem"),
                           combined=os.path.join(d, "cert-and-key.pem"),
                           client_conf=os.path.join(d, "client-openssl.cnf"))
    with open(tls.client_conf, "w") as f:
        f.write(configs.TLS_CLIENT_CONF)
    argv = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "365", "-keyout", tls.key,
            "-out", tls.cert, "-subj", f"/CN={configs.TLS_SNI}",
            "-addext", f"subjectAltName=DNS:{configs.TLS_SNI}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise StartError(f"openssl could not make the certificate: {done.stderr.strip()[-300:]}")
    with open(tls.combined, "w") as f:
        for path in (tls.cert, tls.key):
            with open(path) as part:
                f.write(part.read())
    return tls


def tool_versions():
    def first_line(argv):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        text = (done.stdout + done.stderr).strip().splitlines()
        return text[0] if text else "?"

    return {
        "haproxy": first_line(["haproxy", "-v"]).split(" - ")[0].replace("HAProxy version ", ""),
        "nginx": first_line(["nginx", "-v"]).replace("nginx version: nginx/", ""),
        "iperf3": first_line(["iperf3", "--version"]).split(" (")[0].replace("iperf ", ""),
        "wrk": first_line(["wrk", "--version"]).split(" [")[0].replace("wrk ", ""),
        "h2load": (first_line(["h2load", "--version"]).replace("h2load nghttp2/", "")
                   if shutil.which("h2load") else "-"),
        "openssl": first_line(["openssl", "version"]).replace("OpenSSL ", "").split(" (")[0],
        "python": platform.python_version(),
    }


def weir_source(src):
    """Which weir this is: the commit of the source tree it was built from, and whether lb/ or
    bpf/ had uncommitted changes; or just the tree, if it is not a git checkout."""
    if not src:
        return "built elsewhere (--weir without --weir-source)"
    try:
        head = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", src, "status", "--porcelain", "--", "lb", "bpf"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        head = None
    if not head or head.returncode != 0:
        return f"built from {src}"
    return head.stdout.strip() + (" + uncommitted changes in lb/ or bpf/" if dirty else "")


def _loadavg():
    """1-minute load average: other work on the machine shows here (it skews every figure)."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def make_targets(names, out, pid_file, backends, workers, weir, baseline=None,
                 engines=(None, None), acl=False):
    makers = {
        "direct": lambda: Direct(out, pid_file, backends, workers, acl),
        "haproxy-spliceauto": lambda: HAProxy(out, pid_file, backends, workers, "auto", acl),
        "haproxy-splice": lambda: HAProxy(out, pid_file, backends, workers, "both", acl),
        "nginx": lambda: Nginx(out, pid_file, backends, workers, acl),
        "weir": lambda: Weir(out, pid_file, backends, workers, weir, engine=engines[0],
                             acl=acl),
        "weir-baseline": lambda: Weir(out, pid_file, backends, workers, baseline,
                                      name="weir-baseline", engine=engines[1], acl=acl),
    }
    return [makers[n]() for n in names]


def measure(workload, target, backends, s, rnd, flood_binary):
    if workload == "bulk1":
        return workloads.run_bulk(target, backends, s, 1)
    if workload == "bulk4":
        return workloads.run_bulk(target, backends, s, 4)
    if workload == "cps":
        return workloads.run_http(target, s, close=True)
    if workload == "syscalls":
        return workloads.run_syscalls(target, s)
    if workload == "keepalive":
        return workloads.run_http(target, s, close=False)
    if workload == "idle":
        return workloads.run_idle(target, backends, s)
    if workload == "evenness":
        return workloads.run_evenness(target, s)
    if workload == "tls-handshake":
        return workloads.run_tls_handshakes(target, s, "tls-h1")
    if workload == "tls-keepalive-h1":
        return workloads.run_tls_requests(target, s, h2=False)
    if workload == "tls-keepalive-h2":
        return workloads.run_tls_requests(target, s, h2=True)
    if workload == "tls-bulk":
        return workloads.run_tls_bulk(target, s)
    if workload == "tls-passthrough-cps":
        return workloads.run_tls_handshakes(target, s, "tls-pass")
    if workload == "denied-flood":
        return workloads.run_denied_flood(target, s, rnd, flood_binary)
    raise ValueError(workload)


def measure_once(workload, target, backends, s, rnd, results, flood_binary=None):
    """One measurement with everything around it: (re)start the target if it is down, measure,
    then look for crashes of the target or the backends and for lines it logged."""
    where = f"round {rnd + 1} {workload} {target.name}"
    err = target.ensure_started()
    if err:
        rec = workloads.Record(errors=[f"could not start: {err}"])
        results["events"].append(f"{where}: could not start: {err}")
    else:
        other = procfs.OtherCpu(os.getpid())
        other.start()
        try:
            rec = measure(workload, target, backends, s, rnd, flood_binary)
        except Exception as e:  # a driver bug or an OS limit: shown in the table, run goes on
            rec = workloads.Record(errors=[f"benchmark driver error: {type(e).__name__}: {e}"])
            results["events"].append(f"{where}: driver error:\n{traceback.format_exc()}")
        other_cpu, wall = other.stop()
        if not rec.not_applicable:
            rec.raw["other_cpu_pct"] = 100 * other_cpu / (wall * (os.cpu_count() or 1))
    crashes = target.check()
    rec.errors += crashes
    results["events"] += [f"{where}: {c}" for c in crashes]
    for problem in backends.check():
        rec.errors.append(problem)
        results["events"].append(f"{where}: {problem}; restarting the backends")
        backends.stop()
        backends.start()
    # Logged warnings are kept apart from the errors: some are normal (nginx logs iperf3's
    # resets at the end of every test as errors).
    for line in target.new_log_lines():
        results["log_lines"][target.name].append([rnd, workload, line])
    return rec


def summary_of(rec):
    if rec.not_applicable:
        return "n/a"
    parts = [f"{k}={v:.4g}" for k, v in rec.metrics.items()]
    if rec.errors:
        parts.append("ERRORS: " + "; ".join(rec.errors))
    return ", ".join(parts) or "no figures"


def run(args):
    s = settings_from(args)
    preflight(args, s)
    out = os.path.abspath(args.out or time.strftime("/tmp/weir-bench-%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    pid_file = os.path.join(out, "pids")
    open(pid_file, "w").close()
    log(f"weir bench: output in {out}")

    results = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "weir_binary": os.path.abspath(args.weir),
            "weir_version": subprocess.run([args.weir, "-v"], capture_output=True, text=True,
                                           timeout=10).stdout.strip().replace("weir ", ""),
            "weir_commit": weir_source(args.weir_source),
            "baseline_binary": args.baseline,  # made absolute by parse_args
            "weir_engine": args.weir_engine or "default",
            "baseline_engine": args.baseline_engine or "default",
            "versions": tool_versions(),
            "loadavg_start": _loadavg(),
        },
        "settings": vars(s),
        "targets": args.targets,
        "records": [],
        "events": [],
        "log_lines": {t: [] for t in args.targets},
    }
    tls = make_certificate(out) if uses_tls(args) else None
    acl = "denied-flood" in args.workloads
    flood_binary = build_flood(out) if acl else None
    backends = Backends(out, pid_file, max(1, os.cpu_count() or 1), tls)
    targets = make_targets(args.targets, out, pid_file, backends, s.workers, args.weir,
                           args.baseline, (args.weir_engine, args.baseline_engine), acl)
    try:
        backends.start()
        for t in targets:
            err = t.ensure_started()
            if err:
                results["events"].append(f"start of {t.name} failed: {err}")
                log(f"  {t.name} did not start: {err}")
            else:
                log(f"  started {t.name}: ports {t.ports}")
        started = time.monotonic()
        for rnd in range(s.rounds):
            order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
            log(f"round {rnd + 1}/{s.rounds}: order {', '.join(t.name for t in order)}")
            for workload in args.workloads:
                for t in order:
                    rec = measure_once(workload, t, backends, s, rnd, results, flood_binary)
                    results["records"].append({
                        "round": rnd, "workload": workload, "target": t.name,
                        "metrics": rec.metrics, "errors": rec.errors, "raw": rec.raw,
                        "not_applicable": rec.not_applicable,
                    })
                    log(f"  r{rnd + 1} {workload:9} {t.name:18} {summary_of(rec)}")
        results["meta"]["measure_seconds"] = round(time.monotonic() - started, 1)
        results["meta"]["loadavg_end"] = _loadavg()
    finally:
        for t in targets:
            status = t.stop()
            if status not in (None, "exit status 0", "killed by signal 15"):
                results["events"].append(f"{t.name} ended with {status} when stopped")
            results["log_lines"][t.name] += [[None, "stop", l] for l in t.new_log_lines()]
        backends.stop()
        results["meta"]["starts"] = {t.name: t.starts for t in targets if t.name != "direct"}
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
    text = report.markdown(results)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    log(f"weir bench: raw figures in {out}/results.json, tables in {out}/report.md")


def _terminated(*_):
    log("weir bench: terminated (SIGTERM); stopping everything it started")
    sys.exit(143)


def main():
    # `--render RESULTS.json`: print the tables of an earlier run again (after the report's
    # code changed, say) without measuring anything.
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        with open(sys.argv[2]) as f:
            print(report.markdown(json.load(f)))
        return
    # SIGTERM takes the same orderly way out as Ctrl-C: every started process is stopped.
    signal.signal(signal.SIGTERM, _terminated)
    args = parse_args(sys.argv[1:])
    try:
        run(args)
    except StartError as e:  # only the shared backends are fatal; targets are measured
        sys.exit(f"weir bench cannot run: {e}")
    except KeyboardInterrupt:
        sys.exit("weir bench: interrupted")


main()
