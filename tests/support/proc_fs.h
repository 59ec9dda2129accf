#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

// Reading process and socket state from /proc, for tests that need to know which process
// holds which connection. All functions return empty results for processes that are gone.
namespace weir::test {

// Direct children of `parent`: /proc/<parent>/task/*/children when the kernel has it
// (CONFIG_PROC_CHILDREN), else a scan of /proc/*/stat for the parent pid. Sorted.
std::vector<pid_t> childPids(pid_t parent);

// True if /proc/<pid> exists and the process is not a zombie.
bool processAlive(pid_t pid);

// /proc/<pid>/comm (the name set by prctl(PR_SET_NAME)) without the newline; empty if gone.
std::string processComm(pid_t pid);

// /proc/<pid>/cmdline with NULs turned into spaces; empty if unreadable.
std::string processCmdline(pid_t pid);

// CPU time the process has used (utime + stime of /proc/<pid>/stat), in clock ticks
// (sysconf(_SC_CLK_TCK) per second); -1 if unreadable.
long processCpuTicks(pid_t pid);

// Inodes of every socket the process has open (from the /proc/<pid>/fd/* links that read
// "socket:[INODE]").
std::set<uint64_t> socketInodes(pid_t pid);

// Every open fd of the process: number -> what /proc/<pid>/fd/<n> links to ("socket:[123]",
// "pipe:[45]", "anon_inode:[signalfd]", "anon_inode:bpf-map", a path).
std::map<int, std::string> openFds(pid_t pid);

// One row of /proc/net/tcp or /proc/net/tcp6.
struct TcpEntry {
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  int state = 0;       // kernel TCP state, 1 = ESTABLISHED, 10 = LISTEN
  uint64_t inode = 0;  // 0 while a socket sits unaccepted in a listen queue
};
inline constexpr int kTcpEstablished = 1;
inline constexpr int kTcpListen = 10;

// Both tables (IPv4 and IPv6) of the caller's network namespace.
std::vector<TcpEntry> readTcpTables();

// The server side of connections accepted on `listen_port`: established sockets whose local
// port is `listen_port` and that some process has accepted (inode != 0). Maps the client's
// port (the remote port) to the accepted socket's inode.
std::map<uint16_t, uint64_t> acceptedByClientPort(uint16_t listen_port);

// How many accepted, established connections on `listen_port` each process in `pids`
// holds, in the order of `pids`.
std::vector<size_t> connectionsPerProcess(uint16_t listen_port, const std::vector<pid_t>& pids);

// The distinct pipes process `pid` holds (a pipe whose two ends it holds counts once), keyed by
// their /proc/PID/fd link ("pipe:[INODE]"), with their capacities (F_GETPIPE_SZ, in bytes),
// opened through /proc/PID/fd. Sets *why and returns nothing when /proc does not let this
// process open them.
std::map<std::string, int> pipesOf(pid_t pid, std::string* why);

}  // namespace weir::test
