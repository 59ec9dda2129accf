"""Starting and stopping the processes the benchmark runs (proxies, backends).

Each one runs in its own process group, gets SIGTERM if the driver dies (PR_SET_PDEATHSIG),
writes its stdout and stderr to a log file, and is recorded in a pid file that run.sh reads
to clean up after a driver that was killed outright.
"""

import ctypes
import os
import signal
import socket
import subprocess
import time

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    """preexec_fn for load generators: SIGTERM them if the driver dies mid-run."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _child_setup():
    os.setpgrp()  # Ctrl-C in the terminal reaches the driver only; it stops the rest in order
    die_with_parent()


def free_ports(count):
    """count distinct TCP ports on 127.0.0.1 that were free a moment ago (the kernel picked them).
    All sockets are held until every port is chosen, so the ports differ."""
    held = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


class Process:
    """One started program and its descendants."""

    def __init__(self, name, argv, log_path, pid_file, cwd=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._pid_file = pid_file
        self._cwd = cwd
        self.popen = None

    def start(self):
        with open(self.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=self._cwd,
                                          preexec_fn=_child_setup)
        with open(self._pid_file, "a") as f:
            f.write(f"{self.popen.pid}\n")
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def exit_status(self):
        """None while running, else a description of how it ended."""
        if self.popen is None:
            return "never started"
        rc = self.popen.poll()
        if rc is None:
            return None
        return f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"

    def stop(self, timeout=5.0, sig=signal.SIGTERM):
        """sig (SIGTERM unless told), wait up to timeout, then SIGKILL the whole process group.
        Returns how the main process ended (None if it had not been started)."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(sig)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        pgid = self.popen.pid  # the group _child_setup made: its id is the child's pid
        try:
            os.killpg(pgid, signal.SIGKILL)  # workers that outlived their master, if any
        except ProcessLookupError:
            pass
        if self.popen.poll() is None:
            self.popen.wait(2)
        status = self.exit_status()
        self._forget_pid(pgid)
        self.popen = None
        return status

    def _forget_pid(self, pid):
        """Drops pid from the pid file: run.sh's clean-up must not signal a reused pid."""
        with open(self._pid_file) as f:
            pids = [line for line in f.read().split() if line != str(pid)]
        with open(self._pid_file, "w") as f:
            f.write("".join(f"{p}\n" for p in pids))
