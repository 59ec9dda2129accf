"""The things being compared ("targets") and the backends they all share.

A target is a name plus, per service ("bulk", "http", with TLS workloads "tls-h1", "tls-h2",
"tls-pass", and with the denied-flood workload "acl"), the 127.0.0.1 port a client connects
to. "direct" is the backends
themselves (the ceiling); every other target is one proxy process tree that the benchmark
starts, watches for crashes, restarts and stops.
"""

import csv
import os
import re
import socket
import subprocess
import time
import urllib.request

from . import configs, procfs
from .processes import Process, free_ports

SERVICES = ("bulk", "http")
TLS_SERVICES = ("tls-h1", "tls-h2", "tls-pass")
# The backend's extra ports with TLS: cleartext HTTP/2, and nginx terminating TLS itself.
TLS_BACKEND_PORTS = ("h2c", "tls")
READY_TIMEOUT = 15.0


class StartError(RuntimeError):
    """A process did not come up; the message says which and where its log is."""


class _LogTail:
    """Hands out the lines appended to a file since the previous call."""

    def __init__(self, path):
        self.path = path
        self._offset = os.path.getsize(path) if os.path.exists(path) else 0

    def new_lines(self):
        if not os.path.exists(self.path):
            return []
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        return [line for line in data.decode(errors="replace").splitlines() if line.strip()]


def _wait_listening(proc, ports, min_children, what):
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        status = proc.exit_status()
        if status is not None:
            raise StartError(f"{what} exited during start-up ({status}); see {proc.log_path}")
        tree = procfs.process_tree(proc.pid)
        if len(tree) - 1 >= min_children and all(procfs.listening_on(p) for p in ports):
            time.sleep(0.3)  # let the workers reach their event loops
            return
        time.sleep(0.05)
    raise StartError(f"{what} not listening on {ports} after {READY_TIMEOUT:.0f} s; "
                     f"see {proc.log_path}")


class Backends:
    """iperf3 server (bulk) and an nginx HTTP server (requests and idle connections); with tls
    (a configs.TlsFiles), that nginx also speaks cleartext HTTP/2 and TLS, and serves a large
    file for the TLS bulk workload."""

    def __init__(self, out_dir, pid_file, workers, tls=None):
        self.dir = os.path.join(out_dir, "backends")
        os.makedirs(os.path.join(self.dir, "nginx-http", "tmp"), exist_ok=True)
        names = SERVICES + (TLS_BACKEND_PORTS if tls else ())
        self.ports = dict(zip(names, free_ports(len(names))))
        self.tls = tls
        self.bulk_file = None
        if tls:
            # Sparse: nginx sends zero pages, so reading the file costs the backend no disk.
            self.bulk_file = os.path.join(self.dir, "big.bin")
            with open(self.bulk_file, "wb") as f:
                f.truncate(configs.BULK_BYTES)
        self._pid_file = pid_file
        self._workers = workers
        self.iperf = None
        self.http = None

    def start(self):
        self.start_iperf()
        prefix = os.path.join(self.dir, "nginx-http")
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(configs.nginx_http_backend(prefix, self.ports, self._workers, self.tls,
                                               self.bulk_file))
        self.http = Process("nginx-http-backend",
                            ["nginx", "-p", prefix, "-c", conf, "-e", f"{prefix}/error.log"],
                            os.path.join(self.dir, "nginx-http.out"), self._pid_file).start()
        ports = [p for name, p in self.ports.items() if name != "bulk"]
        _wait_listening(self.http, ports, self._workers, "nginx HTTP backend")

    def start_iperf(self):
        self.iperf = Process("iperf3-server",
                             ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(self.ports["bulk"])],
                             os.path.join(self.dir, "iperf3-server.out"), self._pid_file).start()
        _wait_listening(self.iperf, [self.ports["bulk"]], 0, "iperf3 server")

    def restart_iperf(self):
        """After a failed iperf3 run: a fresh server cannot be stuck in the old test."""
        self.iperf.stop()
        self.start_iperf()

    def check(self):
        """Problems with the backends, as sentences (empty when both run)."""
        problems = []
        for proc in (self.iperf, self.http):
            status = proc.exit_status() if proc else "never started"
            if status is not None:
                problems.append(f"backend {proc.name if proc else '?'} is down ({status})")
        return problems

    def stop(self):
        for proc in (self.http, self.iperf):
            if proc:
                proc.stop()


class Target:
    """A proxy under test. Subclasses say how to write its config and command line."""

    name = ""
    # Whether the proxy spreads connections over worker *processes* (evenness measurable).
    has_worker_processes = True
    # Whether the TLS workloads are measured on this target (n/a otherwise).
    measures_tls = True
    # Whether the denied-flood workload is measured on this target (n/a otherwise).
    measures_acl = True

    def __init__(self, out_dir, pid_file, backends, workers, acl=False):
        self.dir = os.path.join(out_dir, self.name)
        os.makedirs(self.dir, exist_ok=True)
        # The TLS services exist only when the run has TLS workloads, so that a run without
        # them can still measure a weir built before TLS (say, as --baseline).
        self.tls = backends.tls if self.measures_tls else None
        # The `acl` service (an access list refusing configs.DENIED_SOURCE) likewise exists
        # only in runs with the denied-flood workload.
        self.acl = acl and self.measures_acl
        names = SERVICES + (TLS_SERVICES if self.tls else ()) + (("acl",) if self.acl else ())
        self.ports = dict(zip(names, free_ports(len(names))))
        self.backend_ports = backends.ports
        self.workers = workers
        self.pid_file = pid_file  # for the processes started beside the proxy (strace)
        self.proc = None
        self._known_pids = set()
        self._logs = []
        self.starts = 0

    # --- to override -----------------------------------------------------------------------
    def argv(self):
        raise NotImplementedError

    def log_files(self):
        """Files the proxy writes warnings and errors to (besides its stdout/stderr)."""
        return []

    def denied_count(self):
        """How many connections the `acl` service refused so far by the proxy's own count, or
        None when the proxy keeps no such count the benchmark can read."""
        return None

    def acl_problem(self):
        """Why the `acl` service refuses nothing on this target (a sentence), or None."""
        return None

    def expected_children(self):
        return self.workers if self.has_worker_processes else 0

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self):
        self.starts += 1
        out = os.path.join(self.dir, "stdout-stderr.log")
        self.proc = Process(self.name, self.argv(), out, self.pid_file, cwd=self.dir).start()
        if not self._logs:
            self._logs = [_LogTail(p) for p in [out] + self.log_files()]
        _wait_listening(self.proc, list(self.ports.values()), self.expected_children(), self.name)
        self._known_pids = set(procfs.process_tree(self.proc.pid))

    def stop(self):
        if self.proc:
            status = self.proc.stop()
            self.proc = None
            return status
        return None

    def ensure_started(self):
        """Starts the proxy if it is not running. Returns None, or why it could not start."""
        if self.running():
            return None
        self.stop()
        try:
            self.start()
        except StartError as e:
            self.stop()
            return str(e)
        return None

    @property
    def root_pid(self):
        return self.proc.pid if self.proc else None

    def worker_pids(self):
        tree = procfs.process_tree(self.root_pid) if self.proc else []
        return tree[1:] if self.has_worker_processes else tree

    def cpu_seconds(self):
        return procfs.tree_cpu_seconds(self.root_pid) if self.proc else None

    def rss_kib(self):
        return procfs.tree_rss_kib(self.root_pid) if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.exit_status() is None

    def check(self):
        """Crashes since the last call, as sentences: the proxy died (ensure_started() starts
        it again), or one of its processes went away (a worker crash, whether or not the
        master respawned it)."""
        problems = []
        if self.proc is None:
            return problems
        status = self.proc.exit_status()
        if status is not None:
            problems.append(f"{self.name} died ({status}); see {self.proc.log_path}")
            self.stop()
            return problems
        tree = set(procfs.process_tree(self.proc.pid))
        gone = sorted(self._known_pids - tree)
        if gone:
            born = sorted(tree - self._known_pids)
            problems.append(f"{self.name} process(es) {gone} exited"
                            + (f", new {born}" if born else ""))
        self._known_pids = tree
        return problems

    def new_log_lines(self):
        lines = []
        for tail in self._logs:
            lines.extend(l for l in tail.new_lines() if not l.startswith("--- "))
        return lines


class Direct(Target):
    """Clients talk to the backends themselves: the ceiling every proxy is held against."""

    name = "direct"
    has_worker_processes = False
    measures_acl = False  # the backend has no access list: nothing to compare

    def __init__(self, out_dir, pid_file, backends, workers, acl=False):
        super().__init__(out_dir, pid_file, backends, workers, acl)
        self.ports = {name: backends.ports[name] for name in SERVICES}
        if self.tls:
            # The backend nginx terminating TLS itself and answering: no proxy in between.
            self.ports.update({name: backends.ports["tls"] for name in TLS_SERVICES})

    def start(self):
        self.starts += 1

    def running(self):
        return True

    def stop(self):
        return None

    def worker_pids(self):
        return []

    def check(self):
        return []

    def new_log_lines(self):
        return []


class HAProxy(Target):
    has_worker_processes = False  # one process, nbthread threads

    def __init__(self, out_dir, pid_file, backends, workers, splice, acl=False):
        self.name = {"auto": "haproxy-spliceauto", "both": "haproxy-splice"}[splice]
        self._splice = splice
        # TLS termination cannot splice, so the two splice settings would be one TLS target
        # measured twice; haproxy-spliceauto is HAProxy's TLS row. Likewise a connection
        # refused before its first byte never reaches the splicing: one row for HAProxy.
        self.measures_tls = splice == "auto"
        self.measures_acl = splice == "auto"
        super().__init__(out_dir, pid_file, backends, workers, acl)
        self.stats_socket = os.path.join(self.dir, "stats.sock") if self.acl else None

    def argv(self):
        conf = os.path.join(self.dir, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(configs.haproxy(self.ports, self.backend_ports, self.workers, self._splice,
                                    self.tls, self.stats_socket))
        return ["haproxy", "-db", "-f", conf]

    def denied_count(self):
        """The `dcon` column of the `acl` frontend in `show stat` (connections refused by a
        tcp-request connection rule), read from the stats socket."""
        if not self.stats_socket or not self.running():
            return None
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5.0)
                s.connect(self.stats_socket)
                s.sendall(b"show stat\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        except OSError:
            return None
        lines = data.decode(errors="replace").splitlines()
        if not lines or not lines[0].startswith("# "):
            return None
        rows = csv.DictReader([lines[0][2:]] + lines[1:])
        for row in rows:
            if row.get("pxname") == "acl" and row.get("svname") == "FRONTEND":
                try:
                    return int(row.get("dcon") or 0)
                except ValueError:
                    return None
        return None


class Nginx(Target):
    name = "nginx"

    def argv(self):
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(configs.nginx_stream(self.dir, self.ports, self.backend_ports, self.workers,
                                         self.tls, self.acl))
        return ["nginx", "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log")]

    def denied_count(self):
        """Lines nginx logged for connections its access rules refused (one each), so far."""
        path = os.path.join(self.dir, configs.ACL_ERROR_LOG)
        if not self.acl or not os.path.exists(path):
            return None if not self.acl else 0
        needle = configs.NGINX_DENIED_LINE.encode()
        count = 0
        with open(path, "rb") as f:
            for line in f:
                count += needle in line
        return count

    def log_files(self):
        return [os.path.join(self.dir, "error.log")]


class Weir(Target):
    name = "weir"

    def __init__(self, out_dir, pid_file, backends, workers, binary, name="weir", engine=None,
                 acl=False):
        self.binary = binary
        self.name = name  # "weir-baseline" for the --baseline binary
        self.engine = engine  # global.event_engine; None: weir's default
        super().__init__(out_dir, pid_file, backends, workers, acl)
        # With the acl service, the metrics endpoint too: its weir_listener_denied_total is
        # weir's own count of the connections its access list refused.
        self.metrics_port = free_ports(1)[0] if self.acl else None
        # "deny" while this binary takes the `deny` key; "no-deny" once `weir -t` said it does
        # not know it (a weir built before access lists): the listener is kept without it.
        self._acl_mode = "deny" if self.acl else None
        self._acl_problem = None

    def _write_config(self, conf):
        with open(conf, "w") as f:
            f.write(configs.weir(self.ports, self.backend_ports, self.workers,
                                 os.path.join(self.dir, "error.log"), self.tls, self.engine,
                                 self._acl_mode, self.metrics_port))

    def argv(self):
        conf = os.path.join(self.dir, "weir.toml")
        self._write_config(conf)
        if self._acl_mode == "deny" and self._acl_problem is None:
            self._check_deny(conf)
        return [self.binary, "-c", conf]

    def _check_deny(self, conf):
        """Asks `weir -t` once whether this binary takes the `deny` key; if it does not, leaves
        the key out so that the target runs (its denied-flood row then says why nothing was
        refused). Any other complaint is left for the start to report."""
        try:
            done = subprocess.run([self.binary, "-t", "-c", conf], capture_output=True,
                                  text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return
        said = done.stdout + done.stderr
        if done.returncode != 0 and "unknown key" in said and "deny" in said:
            self._acl_mode = "no-deny"
            self._acl_problem = ("this weir has no access lists (`weir -t` rejects `deny`): "
                                 "its acl listener refuses nothing, so the flood was accepted "
                                 "and proxied")
            self._write_config(conf)
        else:
            self._acl_problem = ""  # checked: deny taken (or some other problem, reported later)

    def acl_problem(self):
        return self._acl_problem or None

    def denied_count(self):
        """weir_listener_denied_total of the `acl` listener from weir's metrics endpoint, or
        None if it has none (a weir built before access lists)."""
        if not self.metrics_port or not self.running():
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                        timeout=5) as r:
                text = r.read().decode(errors="replace")
        except OSError:
            return None
        m = re.search(r'^weir_listener_denied_total\{[^}]*listener="acl"[^}]*\} (\d+)', text,
                      re.M)
        return int(m.group(1)) if m else None

    def log_files(self):
        return [os.path.join(self.dir, "error.log")]
