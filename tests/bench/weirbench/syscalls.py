"""System calls of a proxy's workers while a load runs: `strace -c -f -p PID...`, attached for
the load only, stopped with SIGINT (strace then detaches and writes its summary), parsed from
its -o file.

strace stops the traced threads at every system call, so the proxy runs many times slower
while it is attached: this is a diagnostic, measured apart from every timed workload.
"""

import signal
import time

from . import procfs
from .processes import Process

ATTACH_TIMEOUT = 10.0   # seconds for strace to attach to every thread of every pid
STOP_TIMEOUT = 10.0     # seconds for strace to detach and write its summary after SIGINT


def parse_summary(text):
    """{syscall: [calls, errors]} from the table `strace -c` writes, without its total row;
    None if the text has no total row (strace was killed before it wrote the summary)."""
    counts, total = {}, False
    for line in text.splitlines():
        fields = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall; errors is blank when none.
        if len(fields) not in (5, 6) or not all(_is_number(f) for f in fields[:-1]):
            continue
        if fields[-1] == "total":
            total = True
            continue
        errors = int(fields[4]) if len(fields) == 6 else 0
        counts[fields[-1]] = [int(fields[3]), errors]
    return counts if total else None


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def count(pids, summary_path, log_path, pid_file, load):
    """Runs load() while strace counts the system calls of pids and all their threads.
    Returns (counts as parse_summary gives them or None, load()'s return value or None, error
    text or None). strace never outlives this call: SIGINT, then SIGKILL after STOP_TIMEOUT."""
    argv = ["strace", "-c", "-f", "-o", summary_path]
    for pid in pids:
        argv += ["-p", str(pid)]
    tracer = Process("strace", argv, log_path, pid_file).start()
    result = None
    try:
        err = _wait_attached(tracer, pids)
        if err is None:
            result = load()
    finally:
        status = tracer.stop(timeout=STOP_TIMEOUT, sig=signal.SIGINT)
    if err:
        return None, None, err
    try:
        with open(summary_path) as f:
            counts = parse_summary(f.read())
    except OSError as e:
        counts = None
        status = f"{status}; {summary_path}: {e.strerror}"
    if counts is None:
        return None, result, f"strace wrote no summary (it ended with {status}); see {log_path}"
    return counts, result, None


def _wait_attached(tracer, pids):
    """None once every thread of every pid is traced by tracer, else why not (bounded)."""
    stop_at = time.monotonic() + ATTACH_TIMEOUT
    while True:
        status = tracer.exit_status()
        if status is not None:
            return f"strace ended before attaching ({status}); see {tracer.log_path}"
        if all(procfs.tracers(pid) == {tracer.pid} for pid in pids):
            return None
        if time.monotonic() >= stop_at:
            return (f"strace had not attached to every thread of {pids} after "
                    f"{ATTACH_TIMEOUT:.0f} s; see {tracer.log_path}")
        time.sleep(0.05)
