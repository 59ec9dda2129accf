"""Reads what the benchmark measures about processes and sockets straight from /proc.

Every function here is a snapshot: it never blocks and never sends traffic.
"""

import os
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

TCP_ESTABLISHED = "01"
TCP_LISTEN = "0A"


def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name, or None if the process is gone.

    The command name is in parentheses and may itself contain spaces or parentheses, so the
    split is made at the last ')'. Index 0 of the result is field 3 (state) of proc(5).
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2:].split()


def parent_of(pid):
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def process_tree(root):
    """The pid root and all its live descendants (children, grandchildren...), root first."""
    if _stat_fields(root) is None:
        return []
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            ppid = parent_of(int(name))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        tree.append(pid)
        todo.extend(sorted(children.get(pid, [])))
    return tree


def tracers(pid):
    """TracerPid of every thread of pid (0: not traced); empty if pid is gone."""
    found = set()
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                found.update(int(line.split()[1]) for line in f if line.startswith("TracerPid:"))
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended while we looked
    return found


def tree_cpu_seconds(root):
    """User + system CPU seconds of root and every live descendant, plus what their reaped
    children used (cutime + cstime), so a worker that exits between two snapshots still counts
    (its time moves from its own stat to its parent's). Threads are included: /proc/PID/stat
    sums them."""
    total = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            total += sum(int(x) for x in fields[11:15])
    return total / CLOCK_TICKS


def rss_kib(pid):
    """VmRSS of one process in KiB (0 if it is gone or is a kernel thread)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def tree_rss_kib(root):
    return sum(rss_kib(pid) for pid in process_tree(root))


def socket_inodes(pid):
    """Inodes of the sockets process pid has open."""
    inodes = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return inodes
    for name in names:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue  # closed while we looked
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def tcp_sockets():
    """Rows of /proc/net/tcp as (local_port, remote_port, state, inode). IPv4 only: the
    benchmark uses 127.0.0.1 throughout."""
    rows = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            remote_port = int(parts[2].rsplit(":", 1)[1], 16)
            rows.append((local_port, remote_port, parts[3], int(parts[9])))
    return rows


def established_at(port):
    """Server-side established sockets on a local port (accepted or still in an accept queue)."""
    return sum(1 for lp, _, st, _ in tcp_sockets() if lp == port and st == TCP_ESTABLISHED)


def listening_on(port):
    return any(lp == port and st == TCP_LISTEN for lp, _, st, _ in tcp_sockets())


def accepted_per_process(pids, port):
    """{pid: number of ESTABLISHED sockets with local port `port` that pid holds}, for every pid
    in pids (0 for those holding none). A socket shared by several pids counts for each."""
    wanted = {inode for lp, _, st, inode in tcp_sockets() if lp == port and st == TCP_ESTABLISHED}
    return {pid: len(socket_inodes(pid) & wanted) for pid in pids}


def _machine_busy_seconds():
    """Non-idle CPU seconds of all CPUs from /proc/stat: user, nice, system, irq, softirq."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def _kernel_threads_seconds():
    """CPU seconds of the kernel threads (kthreadd, pid 2, and its children: ksoftirqd,
    kworkers...)."""
    total = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields is not None and (name == "2" or fields[1] == "2"):
                total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


class OtherCpu:
    """Roughly how much CPU time processes outside one process tree (the benchmark's) used
    between start() and stop(): other work on the machine, which skews every figure measured
    meanwhile. It is the machine's busy time minus the tree's own and minus the kernel
    threads' (ksoftirqd does much of the benchmark's own network work). Task times include
    the softirqs run on the task's behalf on this kernel (no IRQ time accounting), as the
    machine's busy time does, so the two compare."""

    def __init__(self, own_root):
        self._root = own_root

    def _snapshot(self):
        return (_machine_busy_seconds(), tree_cpu_seconds(self._root)
                + _kernel_threads_seconds())

    def start(self):
        self._before = self._snapshot()
        self._t0 = time.monotonic()

    def stop(self):
        """Returns (other CPU seconds, wall seconds) since start()."""
        machine, own = self._snapshot()
        other = (machine - self._before[0]) - (own - self._before[1])
        return max(0.0, other), time.monotonic() - self._t0
