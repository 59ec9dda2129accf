#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "net/unique_fd.h"
#include "steer/steering.h"

namespace weir::master {

// Binary upgrade (SIGUSR2), the old master's and the new master's halves.
//
// The old master forks and execs its own command line again (argv[0] names the binary on
// disk, which the package manager has replaced) with every listening socket and the
// steering maps inherited across execve: those fds, and only those, lose FD_CLOEXEC, and the
// environment says what they are:
//   WEIR_INHERIT      "ID@ADDR=FD,FD,...;..."  listening sockets by address, in slot order,
//                                              with the group's id in the steering maps
//   WEIR_INHERIT_BPF  "SOCKS,GROUPS,STATE"     the steering maps (absent without BPF)
//   WEIR_INHERIT_SHM  "FD"                     the serving generation's shm region (a sealed
//                                              memfd): the new master carries health state over
//   WEIR_UPGRADE_FD   "FD"                     the write end of a pipe back to the old master
//   WEIR_GENERATION   "N"                      the next generation number (logs and titles
//                                              keep counting across upgrades)
// The new master reports on that pipe: "READY PID\n" once its workers run (then the old
// master drains and exits), or "EXEC ERRNO\n" from the forked child if execve failed. EOF
// without READY means the new master died first; the old master then carries on.

inline constexpr const char* kInheritEnv = "WEIR_INHERIT";
inline constexpr const char* kInheritBpfEnv = "WEIR_INHERIT_BPF";
inline constexpr const char* kInheritShmEnv = "WEIR_INHERIT_SHM";
inline constexpr const char* kUpgradeFdEnv = "WEIR_UPGRADE_FD";
inline constexpr const char* kGenerationEnv = "WEIR_GENERATION";

// What a new master found in its environment (the variables are removed, so that nothing
// it starts sees them).
struct Inheritance {
  std::string sockets;
  steer::MapFds maps;
  int shm_fd = -1;     // the old master's serving region (-1: none)
  int report_fd = -1;  // -1: not started by an upgrade
  uint64_t next_generation = 1;
};
Inheritance takeInheritance();

// The old master's view of an upgrade in progress.
struct UpgradeChild {
  pid_t pid = -1;
  net::UniqueFd report;  // read end, non-blocking
};

// Forks and execs `args` (args[0]: the binary, looked up in PATH if it has no '/') with
// `fds`, the map fds and `shm_fd` (-1: none) inherited. Throws std::runtime_error if the pipe
// or fork fails.
UpgradeChild startUpgrade(const std::vector<std::string>& args, const std::string& socket_spec,
                          const std::vector<int>& fds, const steer::MapFds& maps, int shm_fd,
                          uint64_t next_generation);

// The new master: writes "READY <pid>\n" to fd and closes it.
void reportReady(int fd);

}  // namespace weir::master
