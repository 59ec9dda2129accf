#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "master/upgrade.h"

namespace weir::master {

// SIGUSR2, the old master's side: the new binary started on our sockets, until it reports
// (see upgrade.h for the protocol). A state machine polled from the master's loop; what to
// do when it ends (drain and exit, or carry on) is the Supervisor's.
class UpgradeFlow {
public:
  enum class State { Waiting, Ready, Failed };

  // Forks and execs `args` with the listening sockets, steering maps and shm region inherited
  // (see startUpgrade). Throws std::runtime_error if that fails.
  UpgradeFlow(const std::vector<std::string>& args, const std::string& socket_spec,
              const std::vector<int>& fds, const steer::MapFds& maps, int shm_fd,
              uint64_t next_generation, int64_t now);
  UpgradeFlow(const UpgradeFlow&) = delete;
  UpgradeFlow& operator=(const UpgradeFlow&) = delete;

  pid_t pid() const { return child_.pid; }
  // The pipe the new master reports on (-1 once it is closed): for the master's poll set.
  int reportFd() const { return child_.report.get(); }
  // The new master exited (the master reaped `status`).
  void onExit(const std::string& how);
  // Reads what the new master reported. Ready: *new_master is its pid. Failed: *why says why.
  State poll(int64_t now, pid_t* new_master, std::string* why);
  int64_t deadline() const { return deadline_ms_; }
  // In a freshly forked child: closes this process's copy of the report pipe.
  void closeReportFd() { child_.report.reset(); }
  // Gives up: SIGTERM to the new master, if it still runs (it is reaped and ignored later).
  void abandon();

  static constexpr int64_t kTimeoutMs = 20000;  // the new master must be ready by then

private:
  UpgradeChild child_;
  std::string binary_;
  std::string received_;
  int64_t deadline_ms_;
};

}  // namespace weir::master
