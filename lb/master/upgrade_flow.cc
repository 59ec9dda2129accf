#include "master/upgrade_flow.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace weir::master {
namespace {

constexpr int64_t kExitStatusWaitMs = 1000;  // after EOF: wait this long for its exit status

}  // namespace

UpgradeFlow::UpgradeFlow(const std::vector<std::string>& args, const std::string& socket_spec,
                         const std::vector<int>& fds, const steer::MapFds& maps, int shm_fd,
                         uint64_t next_generation, int64_t now)
    : child_(startUpgrade(args, socket_spec, fds, maps, shm_fd, next_generation)),
      binary_(args.front()),
      deadline_ms_(now + kTimeoutMs) {}

void UpgradeFlow::onExit(const std::string& how) {
  child_.pid = -1;
  received_ += "EXITED " + how + "\n";
}

UpgradeFlow::State UpgradeFlow::poll(int64_t now, pid_t* new_master, std::string* why) {
  bool eof = !child_.report;
  for (int i = 0; i < 8 && child_.report; ++i) {
    char buf[256];
    ssize_t n = ::read(child_.report.get(), buf, sizeof(buf));
    if (n > 0) {
      received_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      child_.report.reset();  // every copy of the write end is closed
      eof = true;
    }
    break;
  }
  int value = 0;
  if (size_t at = received_.find("READY "); at != std::string::npos &&
                                          std::sscanf(received_.c_str() + at, "READY %d",
                                                      &value) == 1) {
    *new_master = static_cast<pid_t>(value);
    return State::Ready;
  }
  if (size_t at = received_.find("EXEC "); at != std::string::npos &&
                                         std::sscanf(received_.c_str() + at, "EXEC %d",
                                                     &value) == 1) {
    *why = "cannot exec " + binary_ + ": " + std::strerror(value);
    return State::Failed;
  }
  if (size_t at = received_.find("EXITED "); at != std::string::npos) {
    *why = "the new master " + received_.substr(at + 7, received_.find('\n', at) - at - 7) +
           " before it was ready (its own messages say why)";
    return State::Failed;
  }
  if (eof && deadline_ms_ > now + kExitStatusWaitMs) {
    deadline_ms_ = now + kExitStatusWaitMs;  // closed the pipe: exiting, most likely
  }
  if (now >= deadline_ms_) {
    *why = eof ? "the new master closed its report pipe without being ready"
               : "the new master was not ready within " + std::to_string(kTimeoutMs / 1000) +
                     " s";
    return State::Failed;
  }
  return State::Waiting;
}

void UpgradeFlow::abandon() {
  if (child_.pid > 0) {
    ::kill(child_.pid, SIGTERM);
  }
  child_.report.reset();
}

}  // namespace weir::master
